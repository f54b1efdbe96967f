/** Huawei's console feature flags (§4.5): fixed answers describing what this service supports. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { errorResponses } from '../../schemas/common.ts';

const ConsoleConfig = Type.Object({
  is_support_eps: Type.Boolean(),
  is_support_sm2: Type.Boolean(),
  is_support_dhsm: Type.Boolean(),
  dhsm_regions: Type.Array(Type.String()),
  is_support_yearly_monthly_ca: Type.Boolean(),
  is_support_iam5: Type.Boolean(),
  is_support_ocsp: Type.Boolean(),
});

export async function consoleConfigRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/pca/config/console',
    {
      config: { action: 'pca:ca:get' },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'Console feature flags',
        operationId: 'showConsoleConfig',
        response: { 200: ConsoleConfig, 401: errorResponses[401], 403: errorResponses[403] },
      },
    },
    async () => ({
      is_support_eps: false,
      is_support_sm2: false,
      is_support_dhsm: false,
      dhsm_regions: [],
      is_support_yearly_monthly_ca: true,
      is_support_iam5: false,
      is_support_ocsp: true,
    }),
  );
}
