/**
 * The issuance policy document of a CA (`PUT …/{ca_id}/issuance-policy`): validation, normalisation (patterns in
 * the matcher's normal form, duplicates dropped) and the wire form. Unknown fields are refused, so that a misspelt
 * rule is never silently ignored.
 */
import { errors } from '../../errors.ts';
import { KEY_ALGORITHMS, type KeyAlgorithm } from '../../x509/algorithms.ts';
import { EXTENDED_KEY_USAGE_OIDS } from '../../x509/extensions.ts';
import { Oid } from '../../x509/oids.ts';
import { NAME_LIST_KEYS, emptyNameLists, type NameListKey, type NameLists } from '../../x509/name-constraints.ts';
import { normalizePattern } from './name-sets.ts';

export interface IssuancePolicy {
  /** Null: every name is allowed unless denied. Set: only these names, of every type (a type without entries allows none). */
  allowed: NameLists | null;
  /** Deny wins over allow. */
  denied: NameLists | null;
  maxValidityDays: number | null;
  keyAlgorithms: KeyAlgorithm[] | null;
  /** OIDs. Set: the only EKUs a certificate may carry, and the grant for a CSR's EKUs outside EKUS_WITHOUT_A_GRANT. */
  allowedEkus: string[] | null;
  requireNameConstraintsForCas: boolean;
  /** Who set the policy, for refusal messages; default "the issuing CA's issuance policy". */
  label?: string;
}

export interface IssuancePolicyDocument {
  allowed: NameLists | null;
  denied: NameLists | null;
  max_validity_days: number | null;
  key_algorithms: KeyAlgorithm[] | null;
  allowed_ekus: string[] | null;
  require_name_constraints_for_cas: boolean;
}

export const MAX_PATTERNS_PER_LIST = 100;
const MAX_PATTERN_LENGTH = 512;
/** 20 years (the longest certificate, §5.3) in days. */
export const MAX_POLICY_VALIDITY_DAYS = 7305;

/** EKU names of RFC 5280 §4.2.1.12 (and Microsoft's smart card logon), as openssl spells them. */
export const EKU_NAMES: Readonly<Record<string, string>> = {
  serverAuth: Oid.serverAuth,
  clientAuth: Oid.clientAuth,
  codeSigning: Oid.codeSigning,
  emailProtection: Oid.emailProtection,
  timeStamping: Oid.timeStamping,
  OCSPSigning: Oid.OCSPSigning,
  smartCardLogon: Oid.smartCardLogon,
};
export const ANY_EXTENDED_KEY_USAGE = Oid.anyExtendedKeyUsage;
/**
 * The EKUs a CSR may bring without a grant: the contract's flags (§5.6) but timeStamping. Any other EKU
 * (timeStamping, OCSPSigning — a delegated OCSP responder —, any other OID) is issued from a CSR only when the
 * issuer's policy lists it; anyExtendedKeyUsage never.
 */
export const EKUS_WITHOUT_A_GRANT: readonly string[] = Object.values(EXTENDED_KEY_USAGE_OIDS).filter(
  (oid) => oid !== EKU_NAMES.timeStamping,
);
const NAME_OF_EKU = new Map(Object.entries(EKU_NAMES).map(([name, oid]) => [oid, name]));

export const ekuName = (oid: string): string => NAME_OF_EKU.get(oid) ?? oid;

const DOCUMENT_FIELDS = ['allowed', 'denied', 'max_validity_days', 'key_algorithms', 'allowed_ekus', 'require_name_constraints_for_cas'];

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

const PATTERN_FORMS: Record<NameListKey, string> = {
  dns: "a host name or '*.domain' (one or more labels)",
  ip: 'an IP address or a CIDR range with zero host bits',
  uri: "'scheme://host[:port][/path]' (host may be '*.domain'; a path may end in '/*') or a URI without authority",
  email: "'mailbox@host', '*@host' or '*@*.domain'",
};

function patternLists(input: unknown, field: string): NameLists | null {
  if (input === undefined || input === null) return null;
  if (!isObject(input)) throw errors.invalidParameter(`${field} must be an object with dns, ip, uri and email lists`);
  const unknown = Object.keys(input).find((key) => !NAME_LIST_KEYS.includes(key as NameListKey));
  if (unknown !== undefined) throw errors.invalidParameter(`${field}.${unknown} is not a name type (dns, ip, uri, email)`);
  const lists = emptyNameLists();
  for (const key of NAME_LIST_KEYS) {
    const values = input[key];
    if (values === undefined || values === null) continue;
    if (!Array.isArray(values) || values.length > MAX_PATTERNS_PER_LIST) {
      throw errors.invalidParameter(`${field}.${key} must be an array of at most ${MAX_PATTERNS_PER_LIST} patterns`);
    }
    const normalized = values.map((value, index) => {
      const pattern = typeof value === 'string' && value.length <= MAX_PATTERN_LENGTH ? normalizePattern(key, value) : null;
      if (pattern === null) throw errors.invalidParameter(`${field}.${key}[${index}] must be ${PATTERN_FORMS[key]}`);
      return pattern;
    });
    lists[key] = [...new Set(normalized)];
  }
  return lists;
}

function keyAlgorithms(input: unknown): KeyAlgorithm[] | null {
  if (input === undefined || input === null) return null;
  if (!Array.isArray(input) || input.length === 0) {
    throw errors.invalidParameter('key_algorithms must be a non-empty array (omit it to allow every key algorithm)');
  }
  input.forEach((value, index) => {
    if (!KEY_ALGORITHMS.includes(value as KeyAlgorithm)) {
      throw errors.invalidParameter(`key_algorithms[${index}] must be one of ${KEY_ALGORITHMS.join(', ')}`);
    }
  });
  return KEY_ALGORITHMS.filter((algorithm) => input.includes(algorithm));
}

const DOTTED_OID = /^[0-2](\.(0|[1-9]\d{0,9})){1,31}$/;

function allowedEkus(input: unknown): string[] | null {
  if (input === undefined || input === null) return null;
  if (!Array.isArray(input) || input.length === 0 || input.length > 32) {
    throw errors.invalidParameter('allowed_ekus must be an array of 1-32 EKU names or OIDs (omit it to allow every EKU)');
  }
  const oids = input.map((value, index) => {
    const oid = typeof value === 'string' ? (EKU_NAMES[value] ?? (DOTTED_OID.test(value) ? value : null)) : null;
    if (oid === null) {
      throw errors.invalidParameter(`allowed_ekus[${index}] must be one of ${Object.keys(EKU_NAMES).join(', ')} or a dotted OID`);
    }
    if (oid === ANY_EXTENDED_KEY_USAGE) throw errors.invalidParameter(`allowed_ekus[${index}]: anyExtendedKeyUsage can never be granted`);
    return oid;
  });
  return [...new Set(oids)];
}

function maxValidityDays(input: unknown): number | null {
  if (input === undefined || input === null) return null;
  if (!Number.isSafeInteger(input) || (input as number) < 1 || (input as number) > MAX_POLICY_VALIDITY_DAYS) {
    throw errors.invalidParameter(`max_validity_days must be an integer from 1 to ${MAX_POLICY_VALIDITY_DAYS}`);
  }
  return input as number;
}

/**
 * Validates and normalises a policy document; refusals are 400 PCA.00020001 naming the field. A document that
 * sets no rule (`{}`) is no policy: null.
 */
export function parseIssuancePolicy(document: unknown, field = 'issuance_policy'): IssuancePolicy | null {
  if (!isObject(document)) throw errors.invalidParameter(`${field} must be a JSON object`);
  const unknown = Object.keys(document).find((key) => !DOCUMENT_FIELDS.includes(key));
  if (unknown !== undefined) throw errors.invalidParameter(`${unknown} is not an issuance policy field (${DOCUMENT_FIELDS.join(', ')})`);
  const require = document.require_name_constraints_for_cas;
  if (require !== undefined && require !== null && typeof require !== 'boolean') {
    throw errors.invalidParameter('require_name_constraints_for_cas must be a boolean');
  }
  const policy: IssuancePolicy = {
    allowed: patternLists(document.allowed, 'allowed'),
    denied: patternLists(document.denied, 'denied'),
    maxValidityDays: maxValidityDays(document.max_validity_days),
    keyAlgorithms: keyAlgorithms(document.key_algorithms),
    allowedEkus: allowedEkus(document.allowed_ekus),
    requireNameConstraintsForCas: require === true,
  };
  const setsSomething =
    policy.allowed !== null ||
    policy.denied !== null ||
    policy.maxValidityDays !== null ||
    policy.keyAlgorithms !== null ||
    policy.allowedEkus !== null ||
    policy.requireNameConstraintsForCas;
  return setsSomething ? policy : null;
}

/** The wire form: every field present, null when unset; EKUs by name where they have one. */
export function policyDocument(policy: IssuancePolicy | null): IssuancePolicyDocument {
  return {
    allowed: policy?.allowed ?? null,
    denied: policy?.denied ?? null,
    max_validity_days: policy?.maxValidityDays ?? null,
    key_algorithms: policy?.keyAlgorithms ?? null,
    allowed_ekus: policy?.allowedEkus?.map(ekuName) ?? null,
    require_name_constraints_for_cas: policy?.requireNameConstraintsForCas ?? false,
  };
}

const storedPolicies = new Map<string, IssuancePolicy | null>();
const MAX_CACHED_POLICIES = 1000;

/**
 * The policy stored on a CA row (its wire form, written by the policy service). Parsed once per distinct
 * document: issuance reads it on every request.
 */
export function storedIssuancePolicy(stored: unknown): IssuancePolicy | null {
  if (stored === null || stored === undefined) return null;
  const key = JSON.stringify(stored);
  let policy = storedPolicies.get(key);
  if (policy === undefined) {
    policy = parseIssuancePolicy(stored);
    if (storedPolicies.size >= MAX_CACHED_POLICIES) storedPolicies.clear();
    storedPolicies.set(key, policy);
  }
  return policy;
}

/** The CA object's `issuance_policy`: the stored document, or null when the CA has none. */
export function storedPolicyDocument(stored: unknown): IssuancePolicyDocument | null {
  const policy = storedIssuancePolicy(stored);
  return policy === null ? null : policyDocument(policy);
}
