/**
 * Temporary access keys (Huawei IAM's `POST /v3.0/OS-CREDENTIAL/securitytokens`): an AK/SK pair that signs like a
 * permanent one and is sent with `X-Security-Token`. Nothing is stored: the security token is the pair's own
 * record (temporary AK, its secret, the issuing key and the expiry), sealed under the master key, so only this
 * service can read or forge one. At each use the issuing key must still be usable, and the temporary pair holds no
 * action that key no longer holds.
 */
import { errors } from '../../errors.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import { newAccessKeyId, newSecret } from './access-key-rules.ts';

/** Huawei IAM's bounds for `duration_seconds` (15 minutes to 24 hours), and its default. */
export const MIN_DURATION_SECONDS = 900;
export const MAX_DURATION_SECONDS = 86_400;

/** Binds sealed tokens to their purpose, so no other sealed item of the service passes as one. */
const AAD = 'pca:security-token';

interface TokenRecord {
  access: string;
  secret: string;
  /** The permanent access key that asked for the pair. */
  issuer: string;
  domainId: string;
  /** ms since the epoch */
  expiresAt: number;
}

export interface TemporaryCredential {
  access: string;
  secret: string;
  securityToken: string;
  expiresAt: Date;
}

export function durationSecondsOf(requested: number | undefined): number {
  const seconds = requested ?? MIN_DURATION_SECONDS;
  if (!Number.isInteger(seconds) || seconds < MIN_DURATION_SECONDS || seconds > MAX_DURATION_SECONDS) {
    throw errors.invalidParameter(`duration_seconds must be an integer from ${MIN_DURATION_SECONDS} to ${MAX_DURATION_SECONDS}`);
  }
  return seconds;
}

export function issueTemporaryCredential(
  sealer: Sealer,
  issuer: { access: string; domainId: string },
  now: Date,
  durationSeconds: number,
): TemporaryCredential {
  const record: TokenRecord = {
    access: newAccessKeyId(),
    secret: newSecret(),
    issuer: issuer.access,
    domainId: issuer.domainId,
    expiresAt: now.getTime() + durationSeconds * 1000,
  };
  const securityToken = sealer.seal(Buffer.from(JSON.stringify(record), 'utf8'), AAD);
  return { access: record.access, secret: record.secret, securityToken, expiresAt: new Date(record.expiresAt) };
}

/** What a security token grants, once its issuer has been checked. */
export interface TemporaryKey {
  secret: string;
  issuer: string;
  domainId: string;
}

/** Opens a security token presented with `access`; a 401 for anything but an unexpired token of that AK. */
export function openSecurityToken(sealer: Sealer, securityToken: string, access: string, now: Date): TemporaryKey {
  let record: TokenRecord;
  try {
    record = JSON.parse(Buffer.from(sealer.unseal(securityToken, AAD)).toString('utf8')) as TokenRecord;
  } catch {
    throw errors.authenticationFailed('X-Security-Token is not a security token of this service');
  }
  if (record.access !== access) throw errors.authenticationFailed('X-Security-Token was issued for another access key');
  if (record.expiresAt <= now.getTime()) throw errors.authenticationFailed('X-Security-Token has expired');
  return { secret: record.secret, issuer: record.issuer, domainId: record.domainId };
}
