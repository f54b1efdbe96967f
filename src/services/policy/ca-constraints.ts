/**
 * The evaluator's rules for a new CA's own name constraints: each permitted subtree lies within the chain's
 * (a CA may narrow, never widen, what its parents permit), and under `require_name_constraints_for_cas` the CA
 * permits something, only what the policy allows, and excludes every denied name its subtrees would reach; a name
 * type the policy limits and the CA leaves unconstrained would let the CA sign any name of that type, so each such
 * type must be constrained too.
 */
import { NAME_LIST_KEYS, type NameConstraints, type NameListKey, hasSubtrees } from '../../x509/name-constraints.ts';
import { type CompiledSubtrees, TYPE_OF_KEY, entriesOf, patternsOf, subtreesOf } from './compiled-rules.ts';
import type { IssuanceFacts, IssuerRules, PolicyViolation } from './evaluator.ts';
import { labelOf, listed } from './evaluator.ts';
import type { IssuancePolicy } from './issuance-policy.ts';
import { type DnsSet, type IpRange, type TypedSet, dnsContains, ipContains, ipOverlaps, setContains, setOverlaps } from './name-sets.ts';
import { parseIp } from '../../x509/extensions.ts';

/** RFC 6761 reserves `invalid`: no name lies at or below it, so a subtree there is how a CA permits no name of a type. */
const RESERVED_INVALID: DnsSet = { kind: 'atOrBelow', domain: 'invalid' };

function permitsNoRealName(subtree: TypedSet): boolean {
  if (subtree.key === 'ip') return false;
  return dnsContains(RESERVED_INVALID, subtree.key === 'email' ? subtree.set.domain : subtree.set);
}

/** Whether excluded subtrees leave no name of the type: DNS `` (every name), IP 0.0.0.0/0 with ::/0. */
function excludesEveryName(key: NameListKey, excluded: CompiledSubtrees): boolean {
  const subtrees = excluded.sets[key];
  if (key === 'dns') return subtrees.some((subtree) => subtree.key === 'dns' && subtree.set.kind === 'all');
  if (key !== 'ip') return false;
  const everyAddress = (octets: number) =>
    subtrees.some((subtree) => subtree.key === 'ip' && subtree.set.prefix === 0 && subtree.set.address.length === octets);
  return everyAddress(4) && everyAddress(16);
}

/** How a CA constrains a type to none of its names, for refusal messages. */
const NO_NAME_HINT: Record<NameListKey, string> = {
  dns: "permit only '.invalid' (RFC 6761: no name lies below it)",
  ip: 'exclude 0.0.0.0/0 and ::/0',
  uri: "permit only '.invalid' (RFC 6761: no host lies below it)",
  email: "permit only '.invalid' (RFC 6761: no mailbox lies below it)",
};

export function checkCaConstraints(facts: IssuanceFacts, rules: IssuerRules): PolicyViolation | null {
  const field = facts.nameConstraintsField ?? 'name_constraints';
  const own = facts.nameConstraints ?? null;
  const permitted = own ? entriesOf(subtreesOf(own.permitted)) : [];
  const excluded = own ? subtreesOf(own.excluded) : null;
  for (const { key, set, text, index } of permitted) {
    const at = `${field}.permitted.${key}[${index}]`;
    if (permitsNoRealName(set)) continue;
    for (const constraints of rules.chainConstraints) {
      const parent = subtreesOf(constraints.permitted);
      if (parent.sets[key].length > 0 && !parent.sets[key].some((subtree) => setContains(subtree, set))) {
        return {
          rule: 'name_constraints_widen',
          field: at,
          value: text,
          message: `${at} '${text}' widens the name constraints of the issuing CA's chain (permitted ${TYPE_OF_KEY[key]}: ${listed(parent.texts[key])}); a CA may only narrow them`,
        };
      }
    }
  }
  for (const policy of rules.policies) {
    if (!policy.requireNameConstraintsForCas) continue;
    if (!own || !hasSubtrees(own.permitted)) {
      return {
        rule: 'name_constraints_required',
        field,
        message: `${field} must permit at least one subtree: ${labelOf(policy)} requires name constraints on CA certificates`,
      };
    }
    for (const { key, set, text, index } of permitted) {
      const at = `${field}.permitted.${key}[${index}]`;
      if (policy.allowed && !permitsNoRealName(set)) {
        // URI subtrees constrain hosts only, so only URI patterns allowing every path of their hosts can cover them.
        const allowed = patternsOf(policy.allowed);
        const covering = key === 'uri' ? allowed.uriHostsForEveryPath : allowed.sets[key];
        if (!covering.some((pattern) => pattern !== null && setContains(pattern, set))) {
          return {
            rule: 'name_not_allowed',
            field: at,
            value: text,
            message: `${at} '${text}' reaches names that ${labelOf(policy)} does not allow (allowed ${key}: ${listed(policy.allowed[key]) || 'none'})`,
          };
        }
      }
      if (policy.denied) {
        const denied = patternsOf(policy.denied).sets[key];
        const reached = denied.findIndex(
          (pattern) =>
            pattern !== null && setOverlaps(set, pattern) && !excluded!.sets[key].some((subtree) => setContains(subtree, pattern)),
        );
        if (reached >= 0) {
          const deniedText = policy.denied[key][reached];
          return {
            rule: 'name_denied',
            field: at,
            value: text,
            message: `${at} '${text}' reaches '${deniedText}', which ${labelOf(policy)} denies; add it to ${field}.excluded.${key}`,
          };
        }
      }
    }
    const unconstrained = unconstrainedType(own, excluded!, policy, field) ?? reachesMappedIpv4(own, excluded!, policy, field);
    if (unconstrained) return unconstrained;
  }
  return null;
}

/** ::ffff:0:0/96: IPv4 addresses written as IPv6. openssl and Go judge them by IPv6 subtrees, Go then matches them to IPv4 hosts. */
const IPV4_MAPPED: IpRange = { address: parseIp('::ffff:0:0')!, prefix: 96 };

/**
 * Under a policy that limits IP names, a CA reaching IPv4-mapped addresses (no permitted IP subtree, or an IPv6 one
 * meeting ::ffff:0:0/96) could sign ::ffff:10.9.0.1 for a client of 10.9.0.1 past its IPv4 subtrees, unless it
 * excludes them.
 */
function reachesMappedIpv4(
  own: NameConstraints,
  excluded: CompiledSubtrees,
  policy: IssuancePolicy,
  field: string,
): PolicyViolation | null {
  const limitsIp = policy.allowed !== null || (policy.denied?.ip.length ?? 0) > 0;
  const ipSets = (subtrees: CompiledSubtrees) => subtrees.sets.ip.flatMap((subtree) => (subtree.key === 'ip' ? [subtree.set] : []));
  if (!limitsIp || ipSets(excluded).some((range) => ipContains(range, IPV4_MAPPED))) return null;
  const permitted = ipSets(subtreesOf(own.permitted));
  if (permitted.length > 0 && !permitted.some((range) => ipOverlaps(range, IPV4_MAPPED))) return null;
  return {
    rule: 'name_constraints_required',
    field,
    message: `${field} reaches IPv4-mapped addresses (::ffff:0:0/96), which clients match to IPv4 hosts past its IPv4 subtrees; ${labelOf(policy)} limits IP names: exclude ::ffff:0:0/96`,
  };
}

/**
 * The first name type the policy limits (every type under `allowed`, a type with denied entries otherwise) that the
 * CA leaves open: no permitted subtree of that type, and excluded subtrees that leave some allowed-out or denied name.
 */
function unconstrainedType(
  own: NameConstraints,
  excluded: CompiledSubtrees,
  policy: IssuancePolicy,
  field: string,
): PolicyViolation | null {
  for (const key of NAME_LIST_KEYS) {
    if (own.permitted[key].length > 0 || excludesEveryName(key, excluded)) continue;
    const type = TYPE_OF_KEY[key];
    if (policy.allowed) {
      const allowed = policy.allowed[key];
      return {
        rule: 'name_constraints_required',
        field,
        message: `${field} must constrain ${type} names: ${labelOf(policy)} ${
          allowed.length > 0 ? `allows only ${listed(allowed)}; permit subtrees within them` : `allows none; ${NO_NAME_HINT[key]}`
        }`,
      };
    }
    const denied = policy.denied ? patternsOf(policy.denied).sets[key] : [];
    const reached = denied.findIndex((pattern) => pattern === null || !excluded.sets[key].some((subtree) => setContains(subtree, pattern)));
    if (reached >= 0) {
      const deniedText = policy.denied![key][reached];
      return {
        rule: 'name_denied',
        field,
        value: deniedText,
        message: `${field} permits every ${type} name, so it reaches '${deniedText}', which ${labelOf(policy)} denies; exclude it (${field}.excluded.${key}) or permit ${type} subtrees that leave it out`,
      };
    }
  }
  return null;
}
