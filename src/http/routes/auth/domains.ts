/** §3.5: IAM domain discovery for SDK credentials without a domain id. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../../plugins/auth.ts';
import { errorResponses } from '../../schemas/common.ts';

const DomainList = Type.Object({
  domains: Type.Array(Type.Object({ id: Type.String(), name: Type.String() }), { minItems: 1, maxItems: 1 }),
});

export async function domainRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v3/auth/domains',
    {
      config: { signedOnly: true },
      schema: {
        tags: ['authentication'],
        summary: "The signing access key's domain (IAM domain lookup of the Huawei SDKs)",
        operationId: 'keystoneListAuthDomains',
        security: [{ sdkHmac: [] }],
        response: { 200: DomainList, 401: errorResponses[401] },
      },
    },
    async (request) => {
      const { domainId } = principalOf(request);
      return { domains: [{ id: domainId, name: await app.services.accessKeys.domainName(domainId) }] };
    },
  );
}
