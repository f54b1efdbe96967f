/**
 * Pure rules of certificate issuance (§4.4.1, §4.4.2, §10.9): certificate types and path lengths, key usage and
 * extended key usage precedence, distinguished names inherited from the issuer, and the status derived from time.
 */
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import { keyFamily, type KeyAlgorithm } from '../../x509/algorithms.ts';
import { EXTENDED_KEY_USAGE_OIDS, type KeyUsage } from '../../x509/extensions.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import type { ParsedCsr } from '../../x509/csr.ts';
import { DEFAULT_CA_KEY_USAGES, checkSubordinatePathLength } from '../ca/ca-rules.ts';

export const CERTIFICATE_TYPES = ['ENTITY_CERT', 'INTERMEDIATE_CA'] as const;
export type CertificateType = (typeof CERTIFICATE_TYPES)[number];

export const CERTIFICATE_STATUSES = ['ISSUED', 'REVOKED', 'EXPIRED'] as const;
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/** At most 20 years for a certificate or a subordinate (§5.3). */
export const MAX_CERTIFICATE_YEARS = 20;

/** Huawei's documented default for `POST CERT` (§4.4.1). */
export const DEFAULT_ENTITY_KEY_USAGES: KeyUsage[] = ['digitalSignature', 'keyAgreement'];

const CA_ONLY_USAGES: readonly KeyUsage[] = ['keyCertSign', 'cRLSign'];
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

/**
 * §4.4.1 / §10.9: the request's key usages, else Huawei's default (entity) or the CA set (intermediate). A CA:FALSE
 * certificate never asserts keyCertSign or cRLSign (RFC 5280 §4.2.1.3).
 */
export function requestedKeyUsages(type: CertificateType, keyUsages: readonly KeyUsage[] | undefined): KeyUsage[] {
  const caOnly = type === 'ENTITY_CERT' ? keyUsages?.find((usage) => CA_ONLY_USAGES.includes(usage)) : undefined;
  if (caOnly) throw errors.invalidParameter(`key_usages ${caOnly} is for CA certificates only; an ENTITY_CERT is CA:FALSE`);
  if (keyUsages && keyUsages.length > 0) return [...keyUsages];
  return type === 'ENTITY_CERT' ? DEFAULT_ENTITY_KEY_USAGES : DEFAULT_CA_KEY_USAGES;
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
 * cRLSign), otherwise the defaults for the type and key family.
 */
export function csrKeyUsages(type: CertificateType, csr: Pick<ParsedCsr, 'keyUsages' | 'keyAlgorithm'>): KeyUsage[] {
  if (type === 'INTERMEDIATE_CA') return csr.keyUsages && csr.keyUsages.length > 0 ? csr.keyUsages : DEFAULT_CA_KEY_USAGES;
  const requested = (csr.keyUsages ?? []).filter((usage) => !CA_ONLY_USAGES.includes(usage));
  if (requested.length > 0) return requested;
  return ['digitalSignature', keyFamily(csr.keyAlgorithm) === 'RSA' ? 'keyEncipherment' : 'keyAgreement'];
}

/** §4.4.2: the CSR's EKU when present; otherwise serverAuth + clientAuth for an entity, none for a CA. */
export function csrExtendedKeyUsages(type: CertificateType, csr: Pick<ParsedCsr, 'extendedKeyUsages'>): string[] {
  if (csr.extendedKeyUsages && csr.extendedKeyUsages.length > 0) return csr.extendedKeyUsages;
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
