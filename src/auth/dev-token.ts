/** Admin tokens for development deployments (every action), printed at start and by `npm run dev-token`. */
import type { JWT } from '@fastify/jwt';
import { ACTIONS } from './actions.ts';
import type { TokenClaims } from './jwt.ts';

export const DEV_ADMIN_SUBJECT = 'dev-admin';

export function mintAdminToken(jwt: JWT, domainId: string, ttlSeconds: number): string {
  const claims: TokenClaims = { sub: DEV_ADMIN_SUBJECT, domain_id: domainId, actions: [...ACTIONS] };
  return jwt.sign(claims, { expiresIn: ttlSeconds });
}
