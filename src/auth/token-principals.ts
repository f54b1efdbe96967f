/**
 * A Bearer or X-Auth-Token JWT's caller. A client sends the same token for its whole life, so each verified token's
 * principal is kept by the token's text until its `exp`: a repeat costs a map look-up. fast-jwt's own cache keys its
 * entries by a SHA-256 of the token, ~7 µs of a busy event loop's time per request (bench/issue/RESULTS.md).
 *
 * A kept answer is the one verification would give: the signature, algorithm, issuer and audience depend on the
 * token's bytes alone, and the only claims that move with time are `exp` (the entry's end) and `nbf` (a token not
 * yet valid is refused and not kept). Refusals are never kept, so garbage tokens cannot fill the map.
 */
import { errors } from '../errors.ts';
import type { Principal } from './actions.ts';
import { isDomainId } from '../config/domain-id.ts';
import type { TokenClaims } from './jwt.ts';

/** The claims the token verifier (fast-jwt, through @fastify/jwt) returns for a valid token. */
export type VerifiedClaims = TokenClaims & { exp: number };

/** Tokens kept at once (a few hundred bytes each); past it the oldest entry goes. */
export const MAX_KEPT_TOKENS = 10_000;

export interface TokenPrincipalsOptions {
  /** Verifies the token's signature and claims, throwing if it is not valid now. */
  verify(token: string): VerifiedClaims;
  /** Milliseconds since the epoch, the clock `verify` judges `exp` by. */
  now?: () => number;
}

export function createTokenPrincipals({ verify, now = Date.now }: TokenPrincipalsOptions): (token: string) => Principal {
  const kept = new Map<string, { principal: Principal; expiresAt: number }>();

  return function principalOfToken(token: string): Principal {
    const entry = kept.get(token);
    if (entry) {
      if (now() < entry.expiresAt) return entry.principal;
      kept.delete(token);
    }
    let claims: VerifiedClaims;
    try {
      claims = verify(token);
    } catch (error) {
      throw errors.authenticationFailed(`invalid token: ${(error as Error).message}`);
    }
    if (typeof claims.domain_id !== 'string' || !isDomainId(claims.domain_id) || !Array.isArray(claims.actions)) {
      throw errors.authenticationFailed('invalid token: malformed claims');
    }
    const principal: Principal = Object.freeze({
      domainId: claims.domain_id,
      subject: claims.sub,
      actions: new Set(claims.actions),
      via: 'jwt' as const,
      ...(typeof claims.ak === 'string' ? { exchangedFor: claims.ak } : {}),
    });
    if (kept.size >= MAX_KEPT_TOKENS) kept.delete(kept.keys().next().value!);
    kept.set(token, { principal, expiresAt: claims.exp * 1000 });
    return principal;
  };
}
