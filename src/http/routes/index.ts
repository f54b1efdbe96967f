/** Every route module, in one list: start here to find where a request goes. */
import type { FastifyInstance } from 'fastify';
import { authRouteModules } from './auth/auth-routes.ts';
import { billingRecordRoutes } from './billing/billing-record-routes.ts';
import { caRoutes } from './ca/ca-routes.ts';
import { acmeRoutes } from './acme/acme-routes.ts';
import { acmeAdminRoutes } from './ca/acme-admin-routes.ts';
import { issuancePolicyRoutes } from './ca/issuance-policy-routes.ts';
import { tagRoutes } from './tags/tag-routes.ts';
import { certificateRoutes } from './certificates/certificate-routes.ts';
import { consoleConfigRoutes } from './console-config-routes.ts';
import { healthRoutes } from './health-routes.ts';
import { publicCaCertificateRoutes } from './public/ca-certificate-routes.ts';
import { revocationPublicRoutes } from './public/revocation-public-routes.ts';
import { revocationRoutes } from './revocation/revocation-routes.ts';

/** In registration order; each module is its own plugin (encapsulated: what one adds, another does not see). */
const routeModules = [
  healthRoutes,
  consoleConfigRoutes,
  ...authRouteModules,
  billingRecordRoutes,
  caRoutes,
  issuancePolicyRoutes,
  acmeAdminRoutes,
  tagRoutes,
  publicCaCertificateRoutes,
  certificateRoutes,
  revocationRoutes,
  revocationPublicRoutes,
  acmeRoutes,
];

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  for (const routes of routeModules) await app.register(routes);
}
