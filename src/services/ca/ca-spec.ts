/**
 * What a create or activate request asks of a CA, as pure functions: the request validated into a CaSpec in the
 * contract's order of error codes, whether it is signed at once, and the CRL columns.
 */
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { AppError, errors } from '../../errors.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../x509/algorithms.ts';
import type { KeyUsage } from '../../x509/extensions.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { dnObject } from '../dn-columns.ts';
import { validateDistinguishedName, validateKeyUsages, validateNameConstraints } from '../request-fields.ts';
import type { ActivateCaInput, CaSpecInput, CrlConfigurationInput } from './ca-input.ts';
import {
  MAX_SUBORDINATE_PATH_LENGTH,
  checkCaType,
  checkKeyAlgorithm,
  checkSignatureAlgorithm,
  type CaType,
  type Validity,
} from './ca-rules.ts';

/** Prisma's Bytes columns take an ArrayBuffer-backed copy. */
export const bytesColumn = (data: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(data);

export function crlColumns(crl: CrlConfigurationInput | undefined, caId: string) {
  if (crl === undefined) return {};
  if (typeof crl.enabled !== 'boolean') throw errors.invalidParameter('crl_configuration.enabled is required');
  if (!crl.enabled) return { crlEnabled: false };
  const days = crl.valid_days;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
    throw errors.invalidParameter('crl_configuration.valid_days must be 7-30 when enabled');
  }
  // An empty crl_name takes the default; an empty obs_bucket_name names no bucket (publication reads it as none), so it
  // is stored as null: §5.4 echoes a value or null, never "".
  return { crlEnabled: true, crlValidDays: days, crlName: crl.crl_name || caId, obsBucketName: crl.obs_bucket_name || null };
}

/** The parts of a create/activate request that decide the CA, validated in the contract's order of codes. */
export interface CaSpec {
  type: CaType;
  dn: DistinguishedName;
  keyAlgorithm: KeyAlgorithm;
  hash: HashAlgorithm | null;
  validity: Validity | null;
  issuerRef: string | null;
  pathLength: number | null;
  keyUsages: KeyUsage[] | null;
  nameConstraints: NameConstraints | null;
}

function storedNameConstraints(stored: unknown) {
  try {
    return validateNameConstraints(stored, 'stored name_constraints');
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    throw errors.invalidParameter(`${error.message}; send name_constraints with the activation to replace them`);
  }
}

/**
 * `storedNameConstraints`: `input.name_constraints` is the CA row's own, accepted under earlier rules. Those the
 * rules now refuse (Go would reject the CA certificate) are refused naming them as stored, not as a field the
 * caller never sent, and the way out: sending name_constraints with the activation replaces them.
 */
export function specOf(input: CaSpecInput, options: { storedNameConstraints?: boolean } = {}): CaSpec {
  const type = checkCaType(input.type);
  const dn = validateDistinguishedName(input.distinguished_name, { requireAll: true });
  const keyAlgorithm = checkKeyAlgorithm(input.key_algorithm);
  const hash = input.signature_algorithm === undefined ? null : checkSignatureAlgorithm(input.signature_algorithm);
  const pathLength = type === 'ROOT' ? null : (input.path_length ?? null);
  if (pathLength !== null && (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > MAX_SUBORDINATE_PATH_LENGTH)) {
    throw errors.invalidPathLength(`path_length must be 0-${MAX_SUBORDINATE_PATH_LENGTH}`);
  }
  const keyUsages = type === 'ROOT' || input.key_usages === undefined ? null : validateKeyUsages(input.key_usages);
  const nameConstraints = options.storedNameConstraints
    ? storedNameConstraints(input.name_constraints)
    : validateNameConstraints(input.name_constraints);
  const spec: CaSpec = {
    type,
    dn,
    keyAlgorithm,
    hash,
    validity: input.validity ?? null,
    issuerRef: null,
    pathLength,
    keyUsages,
    nameConstraints,
  };
  if (type === 'ROOT') {
    if (!spec.hash) throw errors.invalidParameter('signature_algorithm is required for a ROOT CA');
    if (!spec.validity) throw errors.invalidParameter('validity is required for a ROOT CA');
  } else if (input.issuer_id !== undefined && input.issuer_id !== '') {
    spec.issuerRef = input.issuer_id;
  }
  return spec;
}

/** A root, or a subordinate given issuer, hash and validity, is signed at once; other subordinates wait PENDING. */
export const signsNow = (spec: CaSpec): boolean =>
  spec.type === 'ROOT' || (spec.issuerRef !== null && spec.hash !== null && spec.validity !== null);

/** A configured PENDING subordinate keeps its type, DN and key; the request adds issuer, hash and validity. */
export function storedSpecInput(row: CertificateAuthority, input: ActivateCaInput): CaSpecInput {
  return {
    type: row.type ?? undefined,
    distinguished_name: dnObject(row),
    key_algorithm: row.keyAlgorithm ?? undefined,
    signature_algorithm: input.signature_algorithm ?? row.signatureAlgorithm ?? undefined,
    path_length: input.path_length ?? row.pathLength,
    key_usages: input.key_usages ?? (row.keyUsages.length > 0 ? row.keyUsages : undefined),
    name_constraints: input.name_constraints ?? row.nameConstraints,
  };
}
