/** Authentication (§3, §10.7) and the audit log: one registration for the route registry. */
import type { FastifyInstance } from 'fastify';
import { accessKeyRoutes } from './access-key-routes.ts';
import { auditEventRoutes } from './audit-event-routes.ts';
import { domainRoutes } from './domain-routes.ts';
import { securityTokenRoutes } from './security-token-routes.ts';
import { tokenRoutes } from './token-routes.ts';

export async function authRoutes(app: FastifyInstance): Promise<void> {
  await app.register(domainRoutes);
  await app.register(tokenRoutes);
  await app.register(securityTokenRoutes);
  await app.register(accessKeyRoutes);
  await app.register(auditEventRoutes);
}
