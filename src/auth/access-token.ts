/** `POST /v1/auth/tokens` (§10.7): a short-lived JWT for an access key, carrying the key's actions at the time. */
import type { JWT } from '@fastify/jwt';
import type { Principal } from './actions.ts';
import type { TokenClaims } from './jwt.ts';

export interface AccessToken {
  token: string;
  /** ms since the epoch, as the token's `exp` says. */
  expiresAt: number;
}

export function mintAccessToken(jwt: JWT, principal: Principal, ttlSeconds: number): AccessToken {
  const claims: TokenClaims = {
    sub: principal.subject,
    domain_id: principal.domainId,
    actions: [...principal.actions],
    ak: principal.subject,
  };
  const token = jwt.sign(claims, { expiresIn: ttlSeconds }); // @fastify/jwt reads a number as seconds
  const { exp } = jwt.decode<{ exp: number }>(token)!;
  return { token, expiresAt: exp * 1000 };
}
