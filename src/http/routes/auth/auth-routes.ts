/** Authentication (§3, §10.7) and the audit log: their route modules, for the route registry. */
import { accessKeyRoutes } from './access-key-routes.ts';
import { auditEventRoutes } from './audit-event-routes.ts';
import { domainRoutes } from './domain-routes.ts';
import { securityTokenRoutes } from './security-token-routes.ts';
import { tokenRoutes } from './token-routes.ts';

export const authRouteModules = [domainRoutes, tokenRoutes, securityTokenRoutes, accessKeyRoutes, auditEventRoutes];
