/** Every route module, in one list: start here to find where a request goes. */
import type { FastifyInstance } from 'fastify';
import { authRoutes } from './auth/index.ts';
import { billingRecordRoutes } from './billing/billing-records.ts';
import { certificateRoutes } from './certificates/certificate-routes.ts';
import { consoleConfigRoutes } from './console-config.ts';
import { healthRoutes } from './health.ts';

export async function registerRoutes(app: FastifyInstance): Promise<void> {
  await app.register(healthRoutes);
  await app.register(consoleConfigRoutes);
  await app.register(authRoutes);
  await app.register(billingRecordRoutes);
  await app.register(certificateRoutes);
}
