/** Every route module, in one list: start here to find where a request goes. */
import type { FastifyInstance } from 'fastify';
import { authRoutes } from './auth/auth-routes.ts';
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

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(healthRoutes);
  await app.register(consoleConfigRoutes);
  await app.register(authRoutes);
  await app.register(billingRecordRoutes);
  await app.register(caRoutes);
  await app.register(issuancePolicyRoutes);
  await app.register(acmeAdminRoutes);
  await app.register(tagRoutes);
  await app.register(publicCaCertificateRoutes);
  await app.register(certificateRoutes);
  await app.register(revocationRoutes);
  await app.register(revocationPublicRoutes);
  await app.register(acmeRoutes);
}
