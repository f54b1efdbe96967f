/**
 * Pure rules of certificate issuance (§4.4.1, §4.4.2, §10.9): certificate types and path lengths, key usage and
 * extended key usage precedence, distinguished names inherited from the issuer, and the status derived from time.
 */
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { keyFamily, type KeyAlgorithm, type KeyFamily } from '../../x509/algorithms.ts';
import { EXTENDED_KEY_USAGE_OIDS, keyUsagesForKey, type KeyUsage } from '../../x509/extensions.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import type { ParsedCsr } from '../../x509/csr.ts';
import { CA_SIGNING_KEY_USAGES, caKeyUsages, checkSubordinatePathLength } from '../ca/ca-rules.ts';

export const CERTIFICATE_TYPES = ['ENTITY_CERT', 'INTERMEDIATE_CA'] as const;
export type CertificateType = (typeof CERTIFICATE_TYPES)[number];

export const CERTIFICATE_STATUSES = ['ISSUED', 'REVOKED', 'EXPIRED'] as const;
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/** At most 20 years for a certificate or a subordinate (§5.3). */
export const MAX_CERTIFICATE_YEARS = 20;

/**
 * An entity certificate's key usages when none are asked for: Huawei's documented default for `POST CERT`
 * (§4.4.1, digitalSignature + keyAgreement) for an EC key, keyEncipherment in place of keyAgreement for an RSA key,
 * which cannot agree keys (RFC 3279 §2.3.1); §4.4.2's table for a CSR says the same.
 */
export function defaultEntityKeyUsages(family: KeyFamily): KeyUsage[] {
  return ['digitalSignature', family === 'RSA' ? 'keyEncipherment' : 'keyAgreement'];
}

const SERVER_AUTH = EXTENDED_KEY_USAGE_OIDS.server_auth;
const CLIENT_AUTH = EXTENDED_KEY_USAGE_OIDS.client_auth;

export function checkCertificateType(value: unknown): CertificateType {
  if (value === undefined || value === null) return 'ENTITY_CERT';
  if (!CERTIFICATE_TYPES.includes(value as CertificateType)) {
    throw errors.invalidParameter('type must be ENTITY_CERT or INTERMEDIATE_CA');
  }
  return value as CertificateType;
}

/** The basic constraints of a new certificate: an intermediate's path length must sit below its issuer's. */
export function basicConstraintsFor(
  type: CertificateType,
  requestedPathLength: number | null | undefined,
  issuerPathLength: number,
): { ca: boolean; pathLength?: number } {
  if (type === 'ENTITY_CERT') return { ca: false };
  return { ca: true, pathLength: checkSubordinatePathLength(requestedPathLength, issuerPathLength) };
}

/** A CA:FALSE certificate never asserts keyCertSign or cRLSign (RFC 5280 §4.2.1.3): refused before the issuer is read. */
export function checkRequestedKeyUsages(type: CertificateType, keyUsages: readonly KeyUsage[] | undefined): void {
  const caOnly = type === 'ENTITY_CERT' ? keyUsages?.find((usage) => CA_SIGNING_KEY_USAGES.includes(usage)) : undefined;
  if (caOnly) throw errors.invalidParameter(`key_usages ${caOnly} is for CA certificates only; an ENTITY_CERT is CA:FALSE`);
}

/**
 * §4.4.1 / §10.9: the request's key usages (checked by checkRequestedKeyUsages), else the default for the type and
 * key family. Bits the key cannot stand behind are left out (keyUsagesForKey); a request left with none is refused.
 */
export function requestedKeyUsages(type: CertificateType, keyUsages: readonly KeyUsage[] | undefined, family: KeyFamily): KeyUsage[] {
  if (type === 'INTERMEDIATE_CA') return caKeyUsages(keyUsages, family);
  if (!keyUsages || keyUsages.length === 0) return defaultEntityKeyUsages(family);
  const fit = keyUsagesForKey(keyUsages, family);
  if (fit.length === 0) throw errors.invalidParameter(`key_usages ${keyUsages.join(', ')} do not apply to an ${family} key`);
  return fit;
}

/** §5.6: only the true flags, in the table's order; none at all writes no EKU extension. */
export function extendedKeyUsageOids(flags: Partial<Record<keyof typeof EXTENDED_KEY_USAGE_OIDS, unknown>> | undefined): string[] {
  if (!flags) return [];
  return Object.entries(EXTENDED_KEY_USAGE_OIDS)
    .filter(([flag]) => flags[flag as keyof typeof EXTENDED_KEY_USAGE_OIDS] === true)
    .map(([, oid]) => oid);
}

/**
 * §4.4.2's table: the CSR's key usages when it asks for some (an entity certificate never gets keyCertSign or
 * cRLSign, a CA always does, and no certificate a bit its key cannot stand behind: cert-manager asks keyEncipherment
 * for EC keys by default), otherwise the defaults for the type and key family.
 */
export function csrKeyUsages(type: CertificateType, csr: Pick<ParsedCsr, 'keyUsages' | 'keyAlgorithm'>): KeyUsage[] {
  const family = keyFamily(csr.keyAlgorithm);
  if (type === 'INTERMEDIATE_CA') return caKeyUsages(csr.keyUsages, family);
  const requested = keyUsagesForKey(csr.keyUsages ?? [], family).filter((usage) => !CA_SIGNING_KEY_USAGES.includes(usage));
  return requested.length > 0 ? requested : defaultEntityKeyUsages(family);
}

/**
 * §4.4.2: the CSR's EKUs when present, each once in first-seen order (a purpose said twice is still one purpose);
 * otherwise serverAuth + clientAuth for an entity, none for a CA.
 */
export function csrExtendedKeyUsages(type: CertificateType, csr: Pick<ParsedCsr, 'extendedKeyUsages'>): string[] {
  if (csr.extendedKeyUsages && csr.extendedKeyUsages.length > 0) return [...new Set(csr.extendedKeyUsages)];
  return type === 'ENTITY_CERT' ? [SERVER_AUTH, CLIENT_AUTH] : [];
}

/** §5.2: attributes the request leaves out (absent or null) come from the issuing CA. */
export function inheritDistinguishedName(requested: DistinguishedName, issuer: CertificateAuthority): DistinguishedName {
  const pick = <T>(own: T | null | undefined, inherited: T | null): T | null => (own === undefined || own === null ? inherited : own);
  return {
    common_name: pick(requested.common_name, issuer.commonName),
    country: pick(requested.country, issuer.country),
    state: pick(requested.state, issuer.state),
    locality: pick(requested.locality, issuer.locality),
    organization: pick(requested.organization, issuer.organization),
    organizational_unit: pick(requested.organizational_unit, issuer.organizationalUnit),
  };
}

/** §6.2: REVOKED wins over EXPIRED; ISSUED reads as EXPIRED once `not_after` has passed. */
export function certificateStatus(row: { status: string; notAfter: Date }, now: Date): CertificateStatus {
  if (row.status === 'REVOKED') return 'REVOKED';
  return row.notAfter.getTime() <= now.getTime() ? 'EXPIRED' : 'ISSUED';
}

/** The key algorithm of `POST CERT`: the request's, else the issuer's (§4.4.1). */
export function serverKeyAlgorithm(requested: KeyAlgorithm | undefined, issuer: CertificateAuthority): KeyAlgorithm {
  return requested ?? (issuer.keyAlgorithm as KeyAlgorithm);
}
