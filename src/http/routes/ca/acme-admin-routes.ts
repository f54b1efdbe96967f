/** The REST side of ACME (issue #16): a CA's ACME policy and its External Account Binding keys. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { contextOf } from '../../request-context.ts';
import { AcmePolicyBody, AcmePolicyDocument, CreatedEabKey, EabKeyList, EabKidParams } from './acme-admin-schemas.ts';
import { routeOptions } from './ca-routes.ts';
import { CaIdParams, caFieldErrors } from './ca-schemas.ts';

const CA = '/v1/private-certificate-authorities/:ca_id';
const idOf = (request: FastifyRequest): string => (request.params as { ca_id: string }).ca_id;

export async function acmeAdminRoutes(app: FastifyInstance): Promise<void> {
  const { acmeAdmin } = app.services;
  const byId = { params: CaIdParams, fieldErrorCodes: { ca_id: caFieldErrors.ca_id } };

  app.get(`${CA}/acme-policy`, routeOptions({ action: 'pca:ca:get', summary: "Show a CA's ACME policy", operationId: 'showAcmePolicy', ok: AcmePolicyDocument, ...byId }), (request) =>
    acmeAdmin.showPolicy(contextOf(request), idOf(request)),
  );

  app.put(`${CA}/acme-policy`, routeOptions({ action: 'pca:ca:create', summary: "Replace a CA's ACME policy", operationId: 'updateAcmePolicy', body: AcmePolicyBody, ok: AcmePolicyDocument, ...byId }), (request) =>
    acmeAdmin.replacePolicy(contextOf(request), idOf(request), request.body),
  );

  app.post(`${CA}/acme/eab`, routeOptions({ action: 'pca:acme:eab', summary: 'Create an ACME External Account Binding key', operationId: 'createAcmeEabKey', ok: CreatedEabKey, ...byId }, 'acme'), (request) =>
    acmeAdmin.createEabKey(contextOf(request), idOf(request)),
  );

  app.get(`${CA}/acme/eab`, routeOptions({ action: 'pca:acme:eab', summary: "List a CA's ACME External Account Binding keys", operationId: 'listAcmeEabKeys', ok: EabKeyList, ...byId }, 'acme'), (request) =>
    acmeAdmin.listEabKeys(contextOf(request), idOf(request)),
  );

  app.delete(
    `${CA}/acme/eab/:kid`,
    routeOptions({ action: 'pca:acme:eab', summary: 'Revoke an ACME External Account Binding key (its accounts are deactivated)', operationId: 'revokeAcmeEabKey', ...byId, params: EabKidParams }, 'acme'),
    async (request, reply) => {
      const { ca_id: caId, kid } = request.params as { ca_id: string; kid: string };
      await acmeAdmin.revokeEabKey(contextOf(request), caId, kid);
      return reply.code(204).send();
    },
  );
}
