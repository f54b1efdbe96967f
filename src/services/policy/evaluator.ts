/**
 * The one evaluator of what a CA may sign, called on every issuance path (create-by-CSR, server-made keys,
 * subordinate CAs, ACME): the name constraints of the issuing CA's chain (RFC 5280 §4.2.1.10, from its
 * certificates), then each issuance policy (the CA's own, plus any a caller adds). Pure: the services read the
 * rules under the issuer's row lock and pass them in. The first violation, in request order, is returned.
 */
import { DAY_MS } from '../../clock.ts';
import { errors, type AppError } from '../../errors.ts';
import type { KeyAlgorithm } from '../../x509/algorithms.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { checkCaConstraints } from './ca-constraints.ts';
import { KEY_OF_TYPE, candidateOf, patternsOf, subtreesOf, type Candidate, type NameType } from './compiled-rules.ts';
import { ANY_EXTENDED_KEY_USAGE, EKUS_WITHOUT_A_GRANT, ekuName, type IssuancePolicy } from './issuance-policy.ts';
import { emailDenies, setContains, setOverlaps, uriDenies, uriHostComparable, uriMatches, type EmailSet } from './name-sets.ts';

export type { NameType } from './compiled-rules.ts';

export interface RequestedName {
  type: NameType;
  value: string;
  /** Where the name came from, quoted in a refusal: `subject_alternative_names[1]`, `csr subjectAltName[0]`, … */
  field: string;
}

export interface IssuanceFacts {
  /** The certificate being signed. */
  kind: 'ENTITY' | 'CA';
  /** Its names in request order: SANs, then (for an entity) a host-name-like common name as DNS. */
  names: readonly RequestedName[];
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: KeyAlgorithm;
  /** OIDs the certificate will carry. */
  extendedKeyUsages: readonly string[];
  /** True when the EKUs come from a CSR: any but the contract's flags (timeStamping included) then need a policy's grant. */
  ekusNeedGrant?: boolean;
  /** Kind CA: the name constraints the new CA certificate will carry. */
  nameConstraints?: NameConstraints | null;
  /** How refusals name the new CA's constraints (default `name_constraints`). */
  nameConstraintsField?: string;
}

export interface IssuerRules {
  /** Every one must pass: the issuing CA's issuance_policy, plus e.g. an ACME directory's. */
  policies: readonly IssuancePolicy[];
  /** The name constraints of the issuing CA's certificate and of each certificate above it. */
  chainConstraints: readonly NameConstraints[];
}

export type ViolationRule =
  | 'name_not_allowed'
  | 'name_denied'
  | 'name_outside_constraints'
  | 'name_excluded_by_constraints'
  | 'max_validity'
  | 'key_algorithm'
  | 'eku'
  | 'eku_required'
  | 'name_constraints_required'
  | 'name_constraints_widen';

export interface PolicyViolation {
  rule: ViolationRule;
  /** The offending field: `subject_alternative_names[1]`, `validity`, `key_algorithm`, `name_constraints.permitted.dns[0]`, … */
  field: string;
  /** The offending name or value, when there is one. */
  value?: string;
  /** Ready for `error_msg`. */
  message: string;
}

const MAX_LISTED = 5;

export const labelOf = (policy: IssuancePolicy): string => policy.label ?? "the issuing CA's issuance policy";
export const listed = (values: readonly string[]): string =>
  values.length <= MAX_LISTED ? values.join(', ') : `${values.slice(0, MAX_LISTED).join(', ')}, … (${values.length} in all)`;

/** The first denied pattern the name meets, as an index into the list of its type; -1 for none. */
function deniedIndex(candidate: Candidate, denied: ReturnType<typeof patternsOf>): number {
  if (candidate.key === 'uri') return denied.uri.findIndex((pattern) => pattern !== null && uriDenies(pattern, candidate.uri!));
  if (candidate.key === 'email')
    return denied.sets.email.findIndex(
      (pattern) => pattern !== null && emailDenies(pattern.set as EmailSet, candidate.set!.set as EmailSet),
    );
  return denied.sets[candidate.key].findIndex((pattern) => pattern !== null && setOverlaps(pattern, candidate.set!));
}

function allowedBy(candidate: Candidate, allowed: ReturnType<typeof patternsOf>): boolean {
  if (candidate.key === 'uri')
    return candidate.uri!.userinfo === null && allowed.uri.some((pattern) => pattern !== null && uriMatches(pattern, candidate.uri!));
  return allowed.sets[candidate.key].some((pattern) => pattern !== null && setContains(pattern, candidate.set!));
}

function checkName(name: RequestedName, rules: IssuerRules): PolicyViolation | null {
  const candidate = candidateOf(name.type, name.value);
  const quoted = `${name.field} ${name.type} name '${name.value}'`;
  const refuse = (rule: ViolationRule, why: string): PolicyViolation => ({
    rule,
    field: name.field,
    value: name.value,
    message: `${quoted} ${why}`,
  });
  if (candidate === null) return refuse('name_not_allowed', `cannot be compared with the issuer's rules (not a valid ${name.type} name)`);
  const key = KEY_OF_TYPE[name.type];
  for (const constraints of rules.chainConstraints) {
    const permitted = subtreesOf(constraints.permitted);
    const inside = candidate.set !== null && permitted.sets[key].some((subtree) => setContains(subtree, candidate.set!));
    if (permitted.sets[key].length > 0 && !inside) {
      return refuse(
        'name_outside_constraints',
        `is outside the name constraints of the issuing CA's chain (permitted ${name.type}: ${listed(permitted.texts[key])})`,
      );
    }
    // A URI whose host cannot be judged meets every URI exclusion.
    const excluded = subtreesOf(constraints.excluded);
    const hit = excluded.sets[key].findIndex((subtree) => candidate.set === null || setOverlaps(subtree, candidate.set));
    if (hit >= 0)
      return refuse(
        'name_excluded_by_constraints',
        `is excluded by the name constraints of the issuing CA's chain (excluded ${name.type} '${excluded.texts[key][hit]}')`,
      );
  }
  for (const policy of rules.policies) {
    if (policy.denied) {
      const denied = patternsOf(policy.denied);
      const hit = deniedIndex(candidate, denied);
      if (hit >= 0) {
        const rule = `denied ${key} '${policy.denied[key][hit]}'`;
        // A URI with no comparable host meets the rule whatever its host and path: say so, or it reads as a wrong match.
        const unjudged = key === 'uri' && denied.uri[hit]!.kind === 'hierarchical' && !uriHostComparable(candidate.uri!);
        return refuse('name_denied', `is denied by ${labelOf(policy)} (${unjudged ? `its host cannot be compared with ${rule}` : rule})`);
      }
    }
    if (policy.allowed && !allowedBy(candidate, patternsOf(policy.allowed))) {
      const allowed = policy.allowed[key];
      return refuse(
        'name_not_allowed',
        `is not allowed by ${labelOf(policy)} (${allowed.length > 0 ? `allowed ${key}: ${listed(allowed)}` : `it allows no ${name.type} names`})`,
      );
    }
  }
  return null;
}

function checkEkus(facts: IssuanceFacts, rules: IssuerRules): PolicyViolation | null {
  for (const oid of facts.extendedKeyUsages) {
    const refuse = (message: string): PolicyViolation => ({ rule: 'eku', field: 'extended_key_usage', value: ekuName(oid), message });
    if (oid === ANY_EXTENDED_KEY_USAGE) return refuse('extended key usage anyExtendedKeyUsage is never issued');
    if (facts.ekusNeedGrant && !EKUS_WITHOUT_A_GRANT.includes(oid) && !rules.policies.some((policy) => policy.allowedEkus?.includes(oid))) {
      return refuse(`extended key usage ${ekuName(oid)} is issued only when the issuing CA's issuance policy lists it in allowed_ekus`);
    }
    const refusing = rules.policies.find((policy) => policy.allowedEkus !== null && !policy.allowedEkus.includes(oid));
    if (refusing)
      return refuse(
        `extended key usage ${ekuName(oid)} is not allowed by ${labelOf(refusing)} (allowed: ${refusing.allowedEkus!.map(ekuName).join(', ')})`,
      );
  }
  // A leaf without EKU is valid for every purpose: a policy that limits EKUs must see one.
  const limiting =
    facts.kind === 'ENTITY' && facts.extendedKeyUsages.length === 0
      ? rules.policies.find((policy) => policy.allowedEkus !== null)
      : undefined;
  if (limiting) {
    return {
      rule: 'eku_required',
      field: 'extended_key_usage',
      message: `${labelOf(limiting)} requires an extended key usage from: ${limiting.allowedEkus!.map(ekuName).join(', ')}`,
    };
  }
  return null;
}

/** The first violation, in this order: each name in request order, validity, key algorithm, EKUs, a CA's constraints. */
export function evaluateIssuance(rules: IssuerRules, facts: IssuanceFacts): PolicyViolation | null {
  if (rules.policies.length > 0 || rules.chainConstraints.length > 0) {
    for (const name of facts.names) {
      const violation = checkName(name, rules);
      if (violation) return violation;
    }
  }
  const lifetime = facts.notAfter.getTime() - facts.notBefore.getTime();
  const shorter = rules.policies.find((policy) => policy.maxValidityDays !== null && lifetime > policy.maxValidityDays * DAY_MS);
  if (shorter)
    return {
      rule: 'max_validity',
      field: 'validity',
      message: `validity exceeds the ${shorter.maxValidityDays} days that ${labelOf(shorter)} allows`,
    };
  const keyRule = rules.policies.find((policy) => policy.keyAlgorithms !== null && !policy.keyAlgorithms.includes(facts.keyAlgorithm));
  if (keyRule) {
    return {
      rule: 'key_algorithm',
      field: 'key_algorithm',
      value: facts.keyAlgorithm,
      message: `key algorithm ${facts.keyAlgorithm} is not allowed by ${labelOf(keyRule)} (allowed: ${keyRule.keyAlgorithms!.join(', ')})`,
    };
  }
  return checkEkus(facts, rules) ?? (facts.kind === 'CA' ? checkCaConstraints(facts, rules) : null);
}

export const violationError = (violation: PolicyViolation): AppError => errors.conflictingState(violation.message);

/** `evaluateIssuance`, throwing the refusal as 400 PCA.00020001 naming the offending field and value. */
export function assertIssuanceAllowed(rules: IssuerRules, facts: IssuanceFacts): void {
  const violation = evaluateIssuance(rules, facts);
  if (violation) throw violationError(violation);
}
