/** Huawei's console feature flags (§4.5): fixed answers describing what this service supports. */
import { Type } from 'typebox';
import { routeOptions, type TypedApp } from '../route-options.ts';

const ConsoleConfig = Type.Object({
  is_support_eps: Type.Boolean(),
  is_support_sm2: Type.Boolean(),
  is_support_dhsm: Type.Boolean(),
  dhsm_regions: Type.Array(Type.String()),
  is_support_yearly_monthly_ca: Type.Boolean(),
  is_support_iam5: Type.Boolean(),
  is_support_ocsp: Type.Boolean(),
});

export async function consoleConfigRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/v1/pca/config/console',
    routeOptions({
      action: 'pca:ca:get',
      tag: 'certificate-authorities',
      summary: 'Console feature flags',
      operationId: 'showConsoleConfig',
      ok: ConsoleConfig,
      errors: [401, 403],
    }),
    async function showConsoleConfig() {
      return {
        is_support_eps: false,
        is_support_sm2: false,
        is_support_dhsm: false,
        dhsm_regions: [],
        is_support_yearly_monthly_ca: true,
        is_support_iam5: false,
        is_support_ocsp: true,
      };
    },
  );
}
