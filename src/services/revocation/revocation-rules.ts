/**
 * Pure rules of revocation, CRLs and the OCSP switch (§4.2.7, §4.2.9, §4.2.10, §4.4.6, §6, §10.4).
 */
import { DAY_MS } from '../../clock.ts';
import { errors } from '../../errors.ts';

/** The contract's reasons (§4.4.6) and their RFC 5280 CRLReason codes. */
export const REVOCATION_REASONS = {
  UNSPECIFIED: 0,
  KEY_COMPROMISE: 1,
  CERTIFICATE_AUTHORITY_COMPROMISE: 2,
  AFFILIATION_CHANGED: 3,
  SUPERSEDED: 4,
  CESSATION_OF_OPERATION: 5,
  CERTIFICATE_HOLD: 6,
  PRIVILEGE_WITHDRAWN: 9,
  ATTRIBUTE_AUTHORITY_COMPROMISE: 10,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;
export const REVOCATION_REASON_NAMES = Object.keys(REVOCATION_REASONS) as RevocationReason[];

export function reasonCodeOf(reason: string | undefined): number {
  if (reason === undefined) return REVOCATION_REASONS.UNSPECIFIED;
  if (!Object.hasOwn(REVOCATION_REASONS, reason)) {
    throw errors.invalidParameter(`reason must be one of ${REVOCATION_REASON_NAMES.join(', ')}`);
  }
  return REVOCATION_REASONS[reason as RevocationReason];
}

/** Issuer statuses under which revocations are accepted (§6.1). */
export const REVOKING_STATUSES = ['ACTIVED', 'DISABLED', 'EXPIRED'] as const;

export function isRevokingStatus(status: string): boolean {
  return (REVOKING_STATUSES as readonly string[]).includes(status);
}

/**
 * Statuses under which a CA signs CRLs and OCSP answers: the revoking ones, and DELETED while its deletion is
 * pending — the certificates it issued are still in use until they expire, so relying parties must keep getting
 * their true status (issue #21; §6.1 says "served, not re-signed", see docs/contract-notes.md).
 */
export const SIGNING_STATUSES = [...REVOKING_STATUSES, 'DELETED'] as const;

export function isSigningStatus(status: string): boolean {
  return (SIGNING_STATUSES as readonly string[]).includes(status);
}

/**
 * Serials are stored and compared as lowercase hex of the unsigned magnitude without leading zero octets, the
 * form the OCSP parser and the certificate parser produce. An imported CA's serial may have been written otherwise.
 */
export function canonicalSerialHex(hex: string): string {
  const lower = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  const even = lower.length % 2 ? `0${lower}` : lower;
  const stripped = even.replace(/^(00)+/, '');
  return stripped === '' ? '00' : stripped;
}

export const CRL_VALID_DAYS = { min: 7, max: 30 } as const;
/** Validity of CRLs served for a CA whose CRL was never enabled (relying parties with older certificates). */
export const DEFAULT_CRL_VALID_DAYS = 7;

export function crlValidityMs(crlValidDays: number | null): number {
  return (crlValidDays ?? DEFAULT_CRL_VALID_DAYS) * DAY_MS;
}

export interface CrlState {
  /** Set while a revocation waits for a CRL. */
  crlStaleSince: Date | null;
  latest: { thisUpdate: Date; nextUpdate: Date } | null;
}

/**
 * Whether the job should sign a new CRL: a revocation waits, or the current CRL has used half of its validity
 * (so relying parties always find one well before nextUpdate).
 */
export function isCrlDue(state: CrlState, now: Date): boolean {
  if (state.crlStaleSince !== null || state.latest === null) return true;
  const { thisUpdate, nextUpdate } = state.latest;
  const halfLife = thisUpdate.getTime() + (nextUpdate.getTime() - thisUpdate.getTime()) / 2;
  return now.getTime() >= halfLife;
}

/** Whether a reader must not be handed the stored CRL: none yet, a revocation waits, or it has lapsed. */
export function isCrlUnusable(state: CrlState, now: Date): boolean {
  return state.crlStaleSince !== null || state.latest === null || state.latest.nextUpdate.getTime() <= now.getTime();
}

/** `Cache-Control: public, max-age=N`: whole seconds until nextUpdate, never negative (§10.4). */
export function crlCacheControl(nextUpdate: Date, now: Date): string {
  const seconds = Math.max(0, Math.floor((nextUpdate.getTime() - now.getTime()) / 1000));
  return `public, max-age=${seconds}`;
}
