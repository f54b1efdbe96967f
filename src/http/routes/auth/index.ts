/** Authentication (§3, §10.7) and the audit log: one registration for the route registry. */
import type { FastifyInstance } from 'fastify';
import { accessKeyRoutes } from './access-keys.ts';
import { auditEventRoutes } from './audit-events.ts';
import { domainRoutes } from './domains.ts';
import { securityTokenRoutes } from './security-tokens.ts';
import { tokenRoutes } from './tokens.ts';

export async function authRoutes(app: FastifyInstance): Promise<void> {
  await app.register(domainRoutes);
  await app.register(tokenRoutes);
  await app.register(securityTokenRoutes);
  await app.register(accessKeyRoutes);
  await app.register(auditEventRoutes);
}
