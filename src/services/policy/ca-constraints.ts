/**
 * The evaluator's rules for a new CA's own name constraints: each permitted subtree lies within the chain's
 * (a CA may narrow, never widen, what its parents permit), and under `require_name_constraints_for_cas` the CA
 * permits something, only what the policy allows, and excludes every denied name its subtrees would reach.
 */
import { hasSubtrees } from '../../x509/name-constraints.ts';
import { TYPE_OF_KEY, entriesOf, patternsOf, subtreesOf } from './compiled-rules.ts';
import type { IssuanceFacts, IssuerRules, PolicyViolation } from './evaluator.ts';
import { labelOf, listed } from './evaluator.ts';
import { setContains, setOverlaps } from './name-sets.ts';

export function checkCaConstraints(facts: IssuanceFacts, rules: IssuerRules): PolicyViolation | null {
  const field = facts.nameConstraintsField ?? 'name_constraints';
  const own = facts.nameConstraints ?? null;
  const permitted = own ? entriesOf(subtreesOf(own.permitted)) : [];
  const excluded = own ? subtreesOf(own.excluded) : null;
  for (const { key, set, text, index } of permitted) {
    const at = `${field}.permitted.${key}[${index}]`;
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
      if (policy.allowed) {
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
  }
  return null;
}
