/**
 * The one evaluator of what a CA may sign, called on every issuance path (create-by-CSR, server-made keys,
 * subordinate CAs, ACME): the name constraints of the issuing CA's chain (RFC 5280 §4.2.1.10, from its
 * certificates), then each issuance policy (the CA's own, plus any a caller adds). Pure: the services read the
 * rules under the issuer's row lock and pass them in. The first violation, in request order, is returned.
 */
import { errors, type AppError } from '../../errors.ts';
import type { KeyAlgorithm } from '../../x509/algorithms.ts';
import { hasSubtrees, NAME_LIST_KEYS, type NameConstraints, type NameListKey, type NameLists } from '../../x509/name-constraints.ts';
import { EKUS_NEEDING_A_GRANT, ekuName, type IssuancePolicy } from './issuance-policy.ts';
import {
  dnsContains,
  dnsOverlaps,
  dnsPatternSet,
  dnsSubtreeSet,
  emailContains,
  emailOverlaps,
  emailPatternSet,
  emailSubtreeSet,
  ipContains,
  ipOverlaps,
  ipRange,
  parseRequestedUri,
  requestedDnsSet,
  requestedEmail,
  requestedIp,
  uriHostSubtreeSet,
  uriMatches,
  uriPattern,
  uriPatternHosts,
  type DnsSet,
  type EmailSet,
  type IpRange,
  type RequestedUri,
  type UriPattern,
} from './name-sets.ts';

export type NameType = 'DNS' | 'IP' | 'URI' | 'EMAIL';

export interface RequestedName {
  type: NameType;
  value: string;
  /** Where the name came from, quoted in a refusal: `subject_alternative_names[1]`, `csr subjectAltName`, … */
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
  /** True when the EKUs come from a CSR: timeStamping and OCSPSigning then need a policy's grant. */
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

const DAY_MS = 86_400_000;
const MAX_LISTED = 5;
const TYPE_OF_KEY: Record<NameListKey, NameType> = { dns: 'DNS', ip: 'IP', uri: 'URI', email: 'EMAIL' };
const KEY_OF_TYPE: Record<NameType, NameListKey> = { DNS: 'dns', IP: 'ip', URI: 'uri', EMAIL: 'email' };

const labelOf = (policy: IssuancePolicy): string => policy.label ?? "the issuing CA's issuance policy";
const listed = (values: readonly string[]): string =>
  values.length <= MAX_LISTED ? values.join(', ') : `${values.slice(0, MAX_LISTED).join(', ')}, … (${values.length} in all)`;

// ---------------------------------------------------------------------------------------------------------------
// Compiled rules (cached per policy / constraints object: policies are parsed once per stored document)

interface CompiledPatterns {
  texts: NameLists;
  dns: DnsSet[];
  ip: IpRange[];
  uri: UriPattern[];
  email: EmailSet[];
}

interface CompiledSubtrees {
  texts: NameLists;
  dns: DnsSet[];
  ip: IpRange[];
  /** Host sets (RFC 5280 URI subtrees constrain the host only). */
  uri: DnsSet[];
  email: EmailSet[];
}

const compiledPatterns = new WeakMap<NameLists, CompiledPatterns>();
const compiledSubtrees = new WeakMap<NameLists, CompiledSubtrees>();

/** Patterns were validated by parseIssuancePolicy; a pattern that no longer parses matches nothing. */
function patternsOf(lists: NameLists): CompiledPatterns {
  let compiled = compiledPatterns.get(lists);
  if (!compiled) {
    const present = <T>(values: (T | null)[]): T[] => values.filter((value): value is T => value !== null);
    compiled = {
      texts: lists,
      dns: present(lists.dns.map(dnsPatternSet)),
      ip: present(lists.ip.map(ipRange)),
      uri: present(lists.uri.map(uriPattern)),
      email: present(lists.email.map(emailPatternSet)),
    };
    compiledPatterns.set(lists, compiled);
  }
  return compiled;
}

function subtreesOf(lists: NameLists): CompiledSubtrees {
  let compiled = compiledSubtrees.get(lists);
  if (!compiled) {
    compiled = {
      texts: lists,
      dns: lists.dns.map(dnsSubtreeSet),
      ip: lists.ip.map((cidr) => ipRange(cidr)!),
      uri: lists.uri.map(uriHostSubtreeSet),
      email: lists.email.map(emailSubtreeSet),
    };
    compiledSubtrees.set(lists, compiled);
  }
  return compiled;
}

// ---------------------------------------------------------------------------------------------------------------
// One requested name

type Candidate =
  | { type: 'DNS'; set: DnsSet }
  | { type: 'IP'; range: IpRange }
  | { type: 'URI'; uri: RequestedUri }
  | { type: 'EMAIL'; set: EmailSet };

function candidateOf(name: RequestedName): Candidate | null {
  switch (name.type) {
    case 'DNS': {
      const set = requestedDnsSet(name.value);
      return set && { type: 'DNS', set };
    }
    case 'IP': {
      const range = requestedIp(name.value);
      return range && { type: 'IP', range };
    }
    case 'URI': {
      const uri = parseRequestedUri(name.value);
      return uri && { type: 'URI', uri };
    }
    case 'EMAIL': {
      const set = requestedEmail(name.value);
      return set && { type: 'EMAIL', set };
    }
  }
}

/** The URI's host as a set, when RFC 5280 URI constraints can judge it (a plain host, no userinfo). */
const uriHostSet = (uri: RequestedUri): DnsSet | null =>
  uri.host !== null && uri.hostIsPlain && !uri.userinfo ? { kind: 'exact', name: uri.host } : null;

function withinSubtrees(candidate: Candidate, subtrees: CompiledSubtrees): boolean {
  switch (candidate.type) {
    case 'DNS':
      return subtrees.dns.some((subtree) => dnsContains(subtree, candidate.set));
    case 'IP':
      return subtrees.ip.some((subtree) => ipContains(subtree, candidate.range));
    case 'URI': {
      const host = uriHostSet(candidate.uri);
      return host !== null && subtrees.uri.some((subtree) => dnsContains(subtree, host));
    }
    case 'EMAIL':
      return subtrees.email.some((subtree) => emailContains(subtree, candidate.set));
  }
}

/** The first excluded subtree the name meets. A URI whose host cannot be judged meets any URI exclusion. */
function excludedBy(candidate: Candidate, subtrees: CompiledSubtrees): string | null {
  const key = KEY_OF_TYPE[candidate.type];
  const index = (() => {
    switch (candidate.type) {
      case 'DNS':
        return subtrees.dns.findIndex((subtree) => dnsOverlaps(subtree, candidate.set));
      case 'IP':
        return subtrees.ip.findIndex((subtree) => ipOverlaps(subtree, candidate.range));
      case 'URI': {
        const host = uriHostSet(candidate.uri);
        return subtrees.uri.findIndex((subtree) => host === null || dnsOverlaps(subtree, host));
      }
      case 'EMAIL':
        return subtrees.email.findIndex((subtree) => emailOverlaps(subtree, candidate.set));
    }
  })();
  return index < 0 ? null : subtrees.texts[key][index];
}

function matchesPattern(candidate: Candidate, patterns: CompiledPatterns, mode: 'allow' | 'deny'): number {
  switch (candidate.type) {
    case 'DNS':
      return mode === 'allow'
        ? patterns.dns.findIndex((pattern) => dnsContains(pattern, candidate.set))
        : patterns.dns.findIndex((pattern) => dnsOverlaps(pattern, candidate.set));
    case 'IP':
      return mode === 'allow'
        ? patterns.ip.findIndex((pattern) => ipContains(pattern, candidate.range))
        : patterns.ip.findIndex((pattern) => ipOverlaps(pattern, candidate.range));
    case 'URI':
      // Userinfo makes the host ambiguous to relying parties: never allowed, and no escape from a deny.
      if (mode === 'allow' && candidate.uri.userinfo) return -1;
      return patterns.uri.findIndex((pattern) => uriMatches(pattern, candidate.uri));
    case 'EMAIL':
      return mode === 'allow'
        ? patterns.email.findIndex((pattern) => emailContains(pattern, candidate.set))
        : patterns.email.findIndex((pattern) => emailOverlaps(pattern, candidate.set));
  }
}

function checkName(name: RequestedName, rules: IssuerRules): PolicyViolation | null {
  const candidate = candidateOf(name);
  const quoted = `${name.field} ${name.type} name '${name.value}'`;
  const key = KEY_OF_TYPE[name.type];
  if (candidate === null) {
    return { rule: 'name_not_allowed', field: name.field, value: name.value, message: `${quoted} cannot be compared with the issuer's rules (not a valid ${name.type} name)` };
  }
  for (const constraints of rules.chainConstraints) {
    const permitted = subtreesOf(constraints.permitted);
    if (permitted.texts[key].length > 0 && !withinSubtrees(candidate, permitted)) {
      return { rule: 'name_outside_constraints', field: name.field, value: name.value, message: `${quoted} is outside the name constraints of the issuing CA's chain (permitted ${name.type}: ${listed(permitted.texts[key])})` };
    }
    const excluded = excludedBy(candidate, subtreesOf(constraints.excluded));
    if (excluded !== null) {
      return { rule: 'name_excluded_by_constraints', field: name.field, value: name.value, message: `${quoted} is excluded by the name constraints of the issuing CA's chain (excluded ${name.type} '${excluded}')` };
    }
  }
  for (const policy of rules.policies) {
    if (policy.denied) {
      const denied = patternsOf(policy.denied);
      const index = matchesPattern(candidate, denied, 'deny');
      if (index >= 0) {
        return { rule: 'name_denied', field: name.field, value: name.value, message: `${quoted} is denied by ${labelOf(policy)} (denied ${key} '${denied.texts[key][index]}')` };
      }
    }
    if (policy.allowed && matchesPattern(candidate, patternsOf(policy.allowed), 'allow') < 0) {
      const allowed = policy.allowed[key];
      const what = allowed.length > 0 ? `allowed ${key}: ${listed(allowed)}` : `it allows no ${name.type} names`;
      return { rule: 'name_not_allowed', field: name.field, value: name.value, message: `${quoted} is not allowed by ${labelOf(policy)} (${what})` };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// A new CA's own constraints

type Subtree = { key: 'dns'; set: DnsSet } | { key: 'ip'; range: IpRange } | { key: 'uri'; set: DnsSet } | { key: 'email'; set: EmailSet };

function subtreeList(lists: NameLists): { subtree: Subtree; text: string; index: number }[] {
  const compiled = subtreesOf(lists);
  return NAME_LIST_KEYS.flatMap((key) =>
    lists[key].map((text, index) => {
      const subtree: Subtree =
        key === 'ip' ? { key, range: compiled.ip[index] } : key === 'email' ? { key, set: compiled.email[index] } : { key, set: compiled[key][index] };
      return { subtree, text, index };
    }),
  );
}

function subtreeWithin(subtree: Subtree, outer: CompiledSubtrees): boolean {
  switch (subtree.key) {
    case 'dns':
      return outer.dns.some((parent) => dnsContains(parent, subtree.set));
    case 'ip':
      return outer.ip.some((parent) => ipContains(parent, subtree.range));
    case 'uri':
      return outer.uri.some((parent) => dnsContains(parent, subtree.set));
    case 'email':
      return outer.email.some((parent) => emailContains(parent, subtree.set));
  }
}

/** Whether the policy's allowed patterns cover every name of the subtree (URI subtrees: by host, every path). */
function subtreeAllowed(subtree: Subtree, allowed: CompiledPatterns): boolean {
  switch (subtree.key) {
    case 'dns':
      return allowed.dns.some((pattern) => dnsContains(pattern, subtree.set));
    case 'ip':
      return allowed.ip.some((pattern) => ipContains(pattern, subtree.range));
    case 'uri':
      return allowed.uri.some((pattern) => {
        const hosts = uriPatternHosts(pattern);
        return hosts !== null && dnsContains(hosts, subtree.set);
      });
    case 'email':
      return allowed.email.some((pattern) => emailContains(pattern, subtree.set));
  }
}

/** The first denied pattern the subtree reaches that the new CA does not exclude itself. */
function deniedWithin(subtree: Subtree, denied: CompiledPatterns, excluded: CompiledSubtrees): string | null {
  const pick = <T>(patterns: T[], meets: (pattern: T) => boolean, coveredByExclusion: (pattern: T) => boolean): number =>
    patterns.findIndex((pattern) => meets(pattern) && !coveredByExclusion(pattern));
  let index: number;
  switch (subtree.key) {
    case 'dns':
      index = pick(denied.dns, (p) => dnsOverlaps(subtree.set, p), (p) => excluded.dns.some((e) => dnsContains(e, p)));
      break;
    case 'ip':
      index = pick(denied.ip, (p) => ipOverlaps(subtree.range, p), (p) => excluded.ip.some((e) => ipContains(e, p)));
      break;
    case 'uri': {
      const hostsOf = (p: UriPattern): DnsSet | null => (p.kind === 'hierarchical' ? p.host : null);
      index = pick(
        denied.uri,
        (p) => hostsOf(p) !== null && dnsOverlaps(subtree.set, hostsOf(p)!),
        (p) => excluded.uri.some((e) => dnsContains(e, hostsOf(p)!)),
      );
      break;
    }
    case 'email':
      index = pick(denied.email, (p) => emailOverlaps(subtree.set, p), (p) => excluded.email.some((e) => emailContains(e, p)));
      break;
  }
  return index < 0 ? null : denied.texts[subtree.key][index];
}

function checkCaConstraints(facts: IssuanceFacts, rules: IssuerRules): PolicyViolation | null {
  const field = facts.nameConstraintsField ?? 'name_constraints';
  const own = facts.nameConstraints ?? null;
  const permitted = own ? subtreeList(own.permitted) : [];
  for (const { subtree, text, index } of permitted) {
    const at = `${field}.permitted.${subtree.key}[${index}]`;
    for (const constraints of rules.chainConstraints) {
      const parent = subtreesOf(constraints.permitted);
      if (parent.texts[subtree.key].length > 0 && !subtreeWithin(subtree, parent)) {
        return {
          rule: 'name_constraints_widen',
          field: at,
          value: text,
          message: `${at} '${text}' widens the name constraints of the issuing CA's chain (permitted ${TYPE_OF_KEY[subtree.key]}: ${listed(parent.texts[subtree.key])}); a CA may only narrow them`,
        };
      }
    }
  }
  for (const policy of rules.policies) {
    if (!policy.requireNameConstraintsForCas) continue;
    if (!own || !hasSubtrees(own.permitted)) {
      return { rule: 'name_constraints_required', field, message: `${field} must permit at least one subtree: ${labelOf(policy)} requires name constraints on CA certificates` };
    }
    for (const { subtree, text, index } of permitted) {
      const at = `${field}.permitted.${subtree.key}[${index}]`;
      if (policy.allowed && !subtreeAllowed(subtree, patternsOf(policy.allowed))) {
        return { rule: 'name_not_allowed', field: at, value: text, message: `${at} '${text}' reaches names that ${labelOf(policy)} does not allow (allowed ${subtree.key}: ${listed(policy.allowed[subtree.key]) || 'none'})` };
      }
      const denied = policy.denied && deniedWithin(subtree, patternsOf(policy.denied), subtreesOf(own.excluded));
      if (denied) {
        return { rule: 'name_denied', field: at, value: text, message: `${at} '${text}' reaches '${denied}', which ${labelOf(policy)} denies; add it to ${field}.excluded.${subtree.key}` };
      }
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// The evaluator

/** The first violation, in this order: each name in request order, validity, key algorithm, EKUs, a CA's constraints. */
export function evaluateIssuance(rules: IssuerRules, facts: IssuanceFacts): PolicyViolation | null {
  if (rules.policies.length > 0 || rules.chainConstraints.length > 0) {
    for (const name of facts.names) {
      const violation = checkName(name, rules);
      if (violation) return violation;
    }
  }
  for (const policy of rules.policies) {
    if (policy.maxValidityDays !== null && facts.notAfter.getTime() - facts.notBefore.getTime() > policy.maxValidityDays * DAY_MS) {
      return { rule: 'max_validity', field: 'validity', message: `validity exceeds the ${policy.maxValidityDays} days that ${labelOf(policy)} allows` };
    }
  }
  for (const policy of rules.policies) {
    if (policy.keyAlgorithms !== null && !policy.keyAlgorithms.includes(facts.keyAlgorithm)) {
      return { rule: 'key_algorithm', field: 'key_algorithm', value: facts.keyAlgorithm, message: `key algorithm ${facts.keyAlgorithm} is not allowed by ${labelOf(policy)} (allowed: ${policy.keyAlgorithms.join(', ')})` };
    }
  }
  const ekuViolation = checkEkus(facts, rules);
  if (ekuViolation) return ekuViolation;
  return facts.kind === 'CA' ? checkCaConstraints(facts, rules) : null;
}

function checkEkus(facts: IssuanceFacts, rules: IssuerRules): PolicyViolation | null {
  for (const oid of facts.extendedKeyUsages) {
    if (facts.ekusNeedGrant && EKUS_NEEDING_A_GRANT.includes(oid) && !rules.policies.some((policy) => policy.allowedEkus?.includes(oid))) {
      return { rule: 'eku', field: 'extended_key_usage', value: ekuName(oid), message: `extended key usage ${ekuName(oid)} is issued only when the issuing CA's issuance policy lists it in allowed_ekus` };
    }
    const refusing = rules.policies.find((policy) => policy.allowedEkus !== null && !policy.allowedEkus.includes(oid));
    if (refusing) {
      return { rule: 'eku', field: 'extended_key_usage', value: ekuName(oid), message: `extended key usage ${ekuName(oid)} is not allowed by ${labelOf(refusing)} (allowed: ${refusing.allowedEkus!.map(ekuName).join(', ')})` };
    }
  }
  if (facts.kind === 'ENTITY' && facts.extendedKeyUsages.length === 0) {
    // A leaf without EKU is valid for every purpose; a policy that limits EKUs must see one.
    const limiting = rules.policies.find((policy) => policy.allowedEkus !== null);
    if (limiting) {
      return { rule: 'eku_required', field: 'extended_key_usage', message: `${labelOf(limiting)} requires an extended key usage from: ${limiting.allowedEkus!.map(ekuName).join(', ')}` };
    }
  }
  return null;
}

export const violationError = (violation: PolicyViolation): AppError => errors.conflictingState(violation.message);

/** `evaluateIssuance`, throwing the refusal as 400 PCA.00020001 naming the offending field and value. */
export function assertIssuanceAllowed(rules: IssuerRules, facts: IssuanceFacts): void {
  const violation = evaluateIssuance(rules, facts);
  if (violation) throw violationError(violation);
}
