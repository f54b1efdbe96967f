/**
 * What the policy evaluator is told about a certificate about to be signed (src/services/policy/evaluator.ts):
 * its names with the request field each came from, its validity, key, EKUs and (for a CA) its name constraints.
 */
import { parseIp, type SubjectAltName } from '../../x509/extensions.ts';
import type { KeyAlgorithm } from '../../x509/algorithms.ts';
import { normalizeDnsName, type NameConstraints } from '../../x509/name-constraints.ts';
import type { IssuanceFacts, RequestedName } from '../policy/index.ts';

/**
 * A common name that reads as a host name (at least two labels, optionally a leading `*.`), as relying parties
 * such as openssl check it against DNS name constraints. Other common names ("mesh-ca", "Platform CA") are not names.
 */
export function hostNameOfCommonName(commonName: string | null | undefined): string | null {
  if (!commonName?.includes('.') || parseIp(commonName) !== null) return null;
  const name = commonName.startsWith('*.') ? commonName.slice(2) : commonName;
  return name.includes('.') && normalizeDnsName(name) !== null ? commonName : null;
}

/** The SANs in order (named by `sanField(index)`), then, for an end entity, a host-name-like common name. */
export function requestedNames(
  sans: readonly SubjectAltName[],
  sanField: (index: number) => string,
  entityCommonName?: { value: string | null | undefined; field: string },
): RequestedName[] {
  const names: RequestedName[] = sans.map((san, index) => ({ type: san.type, value: san.value, field: sanField(index) }));
  const host = hostNameOfCommonName(entityCommonName?.value);
  if (host !== null) names.push({ type: 'DNS', value: host, field: entityCommonName!.field });
  return names;
}

export interface FactsSource {
  type: 'ENTITY_CERT' | 'INTERMEDIATE_CA';
  names: RequestedName[];
  keyAlgorithm: KeyAlgorithm;
  extendedKeyUsages: readonly string[];
  ekusNeedGrant: boolean;
  nameConstraints: NameConstraints | null;
  nameConstraintsField: string;
}

export function issuanceFacts(source: FactsSource, window: { notBefore: Date; notAfter: Date }): IssuanceFacts {
  return {
    kind: source.type === 'ENTITY_CERT' ? 'ENTITY' : 'CA',
    names: source.names,
    notBefore: window.notBefore,
    notAfter: window.notAfter,
    keyAlgorithm: source.keyAlgorithm,
    extendedKeyUsages: source.extendedKeyUsages,
    ekusNeedGrant: source.ekusNeedGrant,
    nameConstraints: source.nameConstraints,
    nameConstraintsField: source.nameConstraintsField,
  };
}
