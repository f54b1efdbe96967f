/**
 * A CA's ACME policy (issue #16): `{enabled, allowed_identifiers, max_validity_days}`. It is enforced by the one
 * issuance evaluator (src/services/policy/) as an extra issuance policy: identifiers at newOrder and finalize, the
 * certificate's lifetime at signing. Unknown fields are refused like the issuance policy's.
 */
import { HOUR_MS } from '../../clock.ts';
import { errors } from '../../errors.ts';
import { emptyNameLists } from '../../x509/name-constraints.ts';
import { MAX_PATTERNS_PER_LIST, MAX_POLICY_VALIDITY_DAYS, type IssuancePolicy } from '../policy/index.ts';
import { normalizePattern } from '../policy/name-sets.ts';

export interface AcmePolicyDocument {
  enabled: boolean;
  /** DNS patterns (`*.example.internal`) and IP ranges; null: any identifier the CA's own rules allow. */
  allowed_identifiers: string[] | null;
  max_validity_days: number | null;
}

/** Lifetime of an ACME certificate when the policy sets no maximum (Let's Encrypt's, which clients expect). */
export const DEFAULT_ACME_VALIDITY_DAYS = 90;
const FIELDS = ['enabled', 'allowed_identifiers', 'max_validity_days'];
const LABEL = "the CA's ACME policy";

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** An IP pattern when it reads as one (digits and dots, or a colon), else a DNS pattern; null when neither. */
function identifierPattern(value: string): { key: 'dns' | 'ip'; pattern: string } | null {
  const looksIp = value.includes(':') || /^[\d./]+$/.test(value);
  const key = looksIp ? 'ip' : 'dns';
  const pattern = normalizePattern(key, value);
  return pattern === null ? null : { key, pattern };
}

export function parseAcmePolicy(document: unknown): AcmePolicyDocument {
  if (!isObject(document)) throw errors.invalidParameter('the ACME policy must be a JSON object');
  const unknown = Object.keys(document).find((key) => !FIELDS.includes(key));
  if (unknown !== undefined) throw errors.invalidParameter(`${unknown} is not an ACME policy field (${FIELDS.join(', ')})`);
  if (typeof document.enabled !== 'boolean') throw errors.invalidParameter('enabled must be true or false');
  let allowed: string[] | null = null;
  const identifiers = document.allowed_identifiers;
  if (identifiers !== undefined && identifiers !== null) {
    if (!Array.isArray(identifiers) || identifiers.length > MAX_PATTERNS_PER_LIST) {
      throw errors.invalidParameter(`allowed_identifiers must be an array of at most ${MAX_PATTERNS_PER_LIST} patterns`);
    }
    allowed = [
      ...new Set(
        identifiers.map((value, index) => {
          const parsed = typeof value === 'string' && value.length <= 512 ? identifierPattern(value) : null;
          if (parsed === null)
            throw errors.invalidParameter(`allowed_identifiers[${index}] must be a host name, '*.domain', an IP address or a CIDR range`);
          return parsed.pattern;
        }),
      ),
    ];
  }
  const days = document.max_validity_days;
  if (
    days !== undefined &&
    days !== null &&
    (!Number.isSafeInteger(days) || (days as number) < 1 || (days as number) > MAX_POLICY_VALIDITY_DAYS)
  ) {
    throw errors.invalidParameter(`max_validity_days must be an integer from 1 to ${MAX_POLICY_VALIDITY_DAYS}`);
  }
  return { enabled: document.enabled, allowed_identifiers: allowed, max_validity_days: (days as number | null | undefined) ?? null };
}

/** The stored document (written by parseAcmePolicy), or the default: off. */
export function storedAcmePolicy(stored: unknown): AcmePolicyDocument {
  return isObject(stored) ? parseAcmePolicy(stored) : { enabled: false, allowed_identifiers: null, max_validity_days: null };
}

/** The ACME policy as the issuance evaluator's extra policy. */
export function acmeIssuancePolicy(policy: AcmePolicyDocument): IssuancePolicy {
  let allowed = null;
  if (policy.allowed_identifiers !== null) {
    allowed = emptyNameLists();
    for (const value of policy.allowed_identifiers) {
      const parsed = identifierPattern(value)!;
      allowed[parsed.key].push(parsed.pattern);
    }
  }
  return {
    allowed,
    denied: null,
    maxValidityDays: policy.max_validity_days,
    keyAlgorithms: null,
    allowedEkus: null,
    requireNameConstraintsForCas: false,
    label: LABEL,
  };
}

/** Days an ACME certificate is valid: the policy's maximum, else the default. */
export const acmeValidityDays = (policy: AcmePolicyDocument): number => policy.max_validity_days ?? DEFAULT_ACME_VALIDITY_DAYS;

/** Room left for the moments between this reading of the clock and the issuance's own. */
const CLOCK_MARGIN_MS = 60_000;

/**
 * The validity an ACME certificate is issued with. The client chose none, so a CA nearer its end than the policy's
 * days issues up to its own not_after, in whole hours, rather than refuse every order; null under an hour.
 */
export function acmeValidity(
  policy: AcmePolicyDocument,
  caNotAfter: Date | null,
  now: Date,
): { type: 'DAY' | 'HOUR'; value: number } | null {
  const days = acmeValidityDays(policy);
  if (caNotAfter === null) return { type: 'DAY', value: days };
  const hoursLeft = Math.floor((caNotAfter.getTime() - now.getTime() - CLOCK_MARGIN_MS) / HOUR_MS);
  if (hoursLeft >= days * 24) return { type: 'DAY', value: days };
  return hoursLeft >= 1 ? { type: 'HOUR', value: hoursLeft } : null;
}
