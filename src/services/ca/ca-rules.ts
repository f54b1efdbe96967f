/**
 * Pure rules of the CA hierarchy: validity windows (§5.3), derived status (§6.1), algorithm and type checks
 * (§4.2.1, §10.3), path lengths and the public URLs written into certificates (§10.4).
 */
import { addCalendarMonthsUtc, DAY_MS, HOUR_MS } from '../../clock.ts';
import type { Prisma } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { HASH_ALGORITHMS, KEY_ALGORITHMS, type HashAlgorithm, type KeyAlgorithm, type KeyFamily } from '../../x509/algorithms.ts';
import { keyUsagesForKey, type KeyUsage } from '../../x509/extensions.ts';

export const CA_STATUSES = ['PENDING', 'ACTIVED', 'DISABLED', 'DELETED', 'EXPIRED'] as const;
export type CaStatus = (typeof CA_STATUSES)[number];
export const CA_TYPES = ['ROOT', 'SUBORDINATE'] as const;
export type CaType = (typeof CA_TYPES)[number];

/** A root's path length as the contract reports it (unlimited). */
export const ROOT_PATH_LENGTH = 7;
export const MAX_SUBORDINATE_PATH_LENGTH = 6;
export const MAX_ROOT_YEARS = 30;
export const MAX_SUBORDINATE_YEARS = 20;
/** §5.3: `start_from` must be later than now minus this. */
const START_FROM_TOLERANCE_MS = 5 * 60 * 1000;

export const DEFAULT_CA_KEY_USAGES: KeyUsage[] = ['digitalSignature', 'keyCertSign', 'cRLSign'];

export const VALIDITY_TYPES = ['YEAR', 'MONTH', 'DAY', 'HOUR'] as const;
export type ValidityType = (typeof VALIDITY_TYPES)[number];

export interface Validity {
  type: string;
  value: number;
  start_from?: number | null;
}

function periodEnd(start: Date, type: ValidityType, value: number): Date {
  switch (type) {
    case 'YEAR':
      return addCalendarMonthsUtc(start, 12 * value);
    case 'MONTH':
      return new Date(start.getTime() + value * 31 * DAY_MS);
    case 'DAY':
      return new Date(start.getTime() + value * DAY_MS);
    case 'HOUR':
      return new Date(start.getTime() + value * HOUR_MS);
  }
}

/**
 * The certificate validity a §5.3 request asks for. Refuses (PCA.00020109) an unknown type, a value below 1,
 * a start more than 5 minutes in the past, a period longer than `maxYears` calendar years, and an end past
 * the issuer's `not_after`.
 */
/** The last instant a certificate can state (RFC 5280 §4.1.2.5: GeneralizedTime 99991231235959Z). */
const LAST_ENCODABLE_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const wholeSeconds = (ms: number): number => ms - (((ms % 1000) + 1000) % 1000);

export function validityWindow(
  validity: Validity,
  now: Date,
  maxYears: number,
  issuerNotAfter?: Date,
  issuerNotBefore?: Date | null,
): { notBefore: Date; notAfter: Date } {
  if (typeof validity !== 'object' || validity === null) throw errors.invalidValidity('validity must be an object');
  const { type, value, start_from: startFrom } = validity;
  if (!VALIDITY_TYPES.includes(type as ValidityType)) {
    throw errors.invalidValidity('validity.type must be YEAR, MONTH, DAY or HOUR');
  }
  if (!Number.isSafeInteger(value) || value < 1) throw errors.invalidValidity('validity.value must be an integer of at least 1');
  if (startFrom !== undefined && startFrom !== null) {
    if (!Number.isSafeInteger(startFrom) || startFrom > LAST_ENCODABLE_TIME_MS) {
      throw errors.invalidValidity('validity.start_from must be milliseconds since the epoch, before the year 10000');
    }
    if (startFrom <= now.getTime() - START_FROM_TOLERANCE_MS) {
      throw errors.invalidValidity('validity.start_from must be later than now minus 5 minutes');
    }
  }
  // Whole seconds: a certificate states no more (RFC 5280 §4.1.2.5), and the API reports what the certificate says.
  const notBefore = new Date(wholeSeconds(startFrom ?? now.getTime()));
  // Cap the value before computing so absurd inputs cannot overflow Date.
  if (value > maxYears * 24 * 366) throw errors.invalidValidity(`validity exceeds ${maxYears} years`);
  const notAfter = periodEnd(notBefore, type as ValidityType, value);
  if (notAfter.getTime() > addCalendarMonthsUtc(notBefore, 12 * maxYears).getTime()) {
    throw errors.invalidValidity(`validity exceeds ${maxYears} years`);
  }
  // A root has no issuer's not_after to stop it.
  if (notAfter.getTime() > LAST_ENCODABLE_TIME_MS) throw errors.invalidValidity('validity must end before the year 10000 (RFC 5280)');
  // start_from's 5-minute tolerance could otherwise date a child before its issuer became valid.
  if (issuerNotBefore && notBefore.getTime() < wholeSeconds(issuerNotBefore.getTime())) {
    throw errors.invalidValidity(`validity must start no earlier than the issuer's not_before (${issuerNotBefore.toISOString()})`);
  }
  if (issuerNotAfter && notAfter.getTime() > issuerNotAfter.getTime()) {
    throw errors.invalidValidity(`validity must end no later than the issuer's not_after (${issuerNotAfter.toISOString()})`);
  }
  return { notBefore, notAfter };
}

/** CSR-issued intermediates (§4.4.2) are CA rows whose key the requester holds: shown and exported only. */
export const NOT_CSR_ISSUED: Prisma.CertificateAuthorityWhereInput = { OR: [{ genMode: null }, { genMode: { not: 'CSR' } }] };

/**
 * §4.2.8: a CA whose scheduled deletion time has passed is removed, whether or not the `ca-deletion` job has
 * finalised it yet (derived on read like expiry): every call naming it gets 404. `delete_time` is set only while
 * DELETED (restore clears it), so the time alone decides. The same holds for a yearly/monthly CA past its
 * retention period.
 */
export function existingCa(now: Date): Prisma.CertificateAuthorityWhereInput {
  return {
    removedAt: null,
    AND: [
      { OR: [{ deleteTime: null }, { deleteTime: { gt: now } }] },
      // A yearly/monthly CA is deleted when its retention period ends (billing/prepaid.ts).
      { OR: [{ prepaidUntil: null }, { prepaidUntil: { gt: releasedBefore(now) } }] },
    ],
  };
}

/** §6.1: ACTIVED and DISABLED read as EXPIRED once `not_after` has passed. */
/**
 * An imported CA certificate's validity as the CA row stores it: no CA certificate means a time before 1950 (UTCTime's
 * start), Postgres cannot store year 0 (a 500), and PGlite reads years below 100 back as 20xx (an expired CA issuing
 * again). External chain certificates are parsed, never stored, and keep any time (Go writes year 1 for an unset one).
 */
export function checkStoredValidity({ notBefore, notAfter }: { notBefore: Date; notAfter: Date }): void {
  if (notBefore.getUTCFullYear() < 1950 || notAfter.getUTCFullYear() < 1950) {
    throw errors.invalidParameter("certificate's validity must lie after 1950 (RFC 5280 §4.1.2.5's UTCTime range starts there)");
  }
}

export function effectiveStatus(row: { status: string; notAfter: Date | null }, now: Date): CaStatus {
  const status = row.status as CaStatus;
  if ((status === 'ACTIVED' || status === 'DISABLED') && row.notAfter && row.notAfter.getTime() <= now.getTime()) {
    return 'EXPIRED';
  }
  return status;
}

export function checkKeyAlgorithm(value: unknown, field = 'key_algorithm'): KeyAlgorithm {
  if (!KEY_ALGORITHMS.includes(value as KeyAlgorithm)) {
    throw errors.invalidKeyAlgorithm(`${field} must be one of ${KEY_ALGORITHMS.join(', ')}`);
  }
  return value as KeyAlgorithm;
}

export function checkSignatureAlgorithm(value: unknown, field = 'signature_algorithm'): HashAlgorithm {
  if (!HASH_ALGORITHMS.includes(value as HashAlgorithm)) {
    throw errors.invalidSignatureAlgorithm(`${field} must be one of ${HASH_ALGORITHMS.join(', ')}`);
  }
  return value as HashAlgorithm;
}

export function checkCaType(value: unknown): CaType {
  if (!CA_TYPES.includes(value as CaType)) throw errors.invalidCaType('type must be ROOT or SUBORDINATE');
  return value as CaType;
}

/** Which CA operations are refused for CSR-issued intermediates and in which statuses (§6.1). */
export function requireStatus(row: { genMode: string | null }, status: CaStatus, allowed: readonly CaStatus[], operation: string): void {
  if (row.genMode === 'CSR') throw errors.conflictingState(`${operation} is not possible for a CA issued from a CSR`);
  if (!allowed.includes(status)) {
    throw errors.conflictingState(`${operation} is not possible in status ${status} (needs ${allowed.join(' or ')})`);
  }
}

/** A subordinate's path length: 0-6 and below its issuer's (PCA.00020203). */
export function checkSubordinatePathLength(value: number | undefined | null, issuerPathLength: number): number {
  const pathLength = value ?? 0;
  if (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > MAX_SUBORDINATE_PATH_LENGTH) {
    throw errors.invalidPathLength(`path_length must be 0-${MAX_SUBORDINATE_PATH_LENGTH}`);
  }
  if (pathLength >= issuerPathLength) {
    throw errors.invalidPathLength(
      issuerPathLength === 0
        ? 'the issuer has path_length 0 and cannot sign a CA'
        : `path_length must be below the issuer's path_length ${issuerPathLength}`,
    );
  }
  return pathLength;
}

/** What a CA's key signs here: certificates, and the CRL this service publishes for every CA (RFC 5280 §4.2.1.3). */
export const CA_SIGNING_KEY_USAGES: readonly KeyUsage[] = ['keyCertSign', 'cRLSign'];

/**
 * A CA certificate always keeps keyCertSign and cRLSign, whatever else the request chose (RFC 5280 §4.2.1.9: a path
 * length needs keyCertSign), and no bit its key cannot stand behind.
 */
export function caKeyUsages(requested: readonly KeyUsage[] | undefined, family: KeyFamily): KeyUsage[] {
  const base = requested && requested.length > 0 ? keyUsagesForKey(requested, family) : DEFAULT_CA_KEY_USAGES;
  return [...new Set<KeyUsage>([...base, ...CA_SIGNING_KEY_USAGES])];
}

/** The public URLs of §10.4 for one CA. */
export const publicUrls = {
  caCertificate: (base: string, caId: string) => `${base}/ca/${caId}.crt`,
  crl: (base: string, caId: string) => `${base}/crl/${caId}.crl`,
  ocsp: (base: string, caId: string) => `${base}/ocsp/${caId}`,
};
