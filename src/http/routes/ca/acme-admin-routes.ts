/** The REST side of ACME (issue #16): a CA's ACME policy and its External Account Binding keys. */
import { contextOf } from '../../request-context.ts';
import { AcmePolicyBody, AcmePolicyDocument, CreatedEabKey, EabKeyList, EabKidParams } from './acme-admin-schemas.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';
import { byCaId as byId } from './ca-schemas.ts';

const CA = '/v1/private-certificate-authorities/:ca_id';

export async function acmeAdminRoutes(app: TypedApp): Promise<void> {
  const { acmeAdmin } = app.services;

  app.get(
    `${CA}/acme-policy`,
    routeOptions({
      tag: 'certificate-authorities',
      action: 'pca:ca:get',
      summary: "Show a CA's ACME policy",
      operationId: 'showAcmePolicy',
      ok: AcmePolicyDocument,
      ...byId,
    }),
    async function showAcmePolicy(request) {
      return acmeAdmin.showPolicy(contextOf(request), request.params.ca_id);
    },
  );

  app.put(
    `${CA}/acme-policy`,
    routeOptions({
      tag: 'certificate-authorities',
      action: 'pca:ca:create',
      auditAction: 'pca:ca:setAcmePolicy',
      summary: "Replace a CA's ACME policy",
      operationId: 'updateAcmePolicy',
      body: AcmePolicyBody,
      ok: AcmePolicyDocument,
      ...byId,
    }),
    async function updateAcmePolicy(request) {
      return acmeAdmin.replacePolicy(contextOf(request), request.params.ca_id, request.body);
    },
  );

  app.post(
    `${CA}/acme/eab`,
    routeOptions({
      tag: 'acme',
      action: 'pca:acme:eab',
      auditAction: 'pca:acme:createEab',
      // An EAB key has no expiry: an ACME account bound with it would outlive a temporary pair or a deleted key's token.
      mintsCredential: true,
      summary: 'Create an ACME External Account Binding key',
      operationId: 'createAcmeEabKey',
      ok: CreatedEabKey,
      ...byId,
    }),
    async function createAcmeEabKey(request) {
      return acmeAdmin.createEabKey(contextOf(request), request.params.ca_id);
    },
  );

  app.get(
    `${CA}/acme/eab`,
    routeOptions({
      tag: 'acme',
      action: 'pca:acme:eab',
      summary: "List a CA's ACME External Account Binding keys",
      operationId: 'listAcmeEabKeys',
      ok: EabKeyList,
      ...byId,
    }),
    async function listAcmeEabKeys(request) {
      return acmeAdmin.listEabKeys(contextOf(request), request.params.ca_id);
    },
  );

  app.delete(
    `${CA}/acme/eab/:kid`,
    routeOptions({
      tag: 'acme',
      action: 'pca:acme:eab',
      auditAction: 'pca:acme:revokeEab',
      summary: 'Revoke an ACME External Account Binding key (its accounts are deactivated)',
      operationId: 'revokeAcmeEabKey',
      ...byId,
      params: EabKidParams,
    }),
    async function revokeEabKey(request, reply) {
      await acmeAdmin.revokeEabKey(contextOf(request), request.params.ca_id, request.params.kid);
      return noContent(reply);
    },
  );
}
