/** A CA's issuance policy (issue #19): read it, or replace it (`{}` removes it). */
import { contextOf } from '../../request-context.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';
import { byCaId as byId } from './ca-schemas.ts';
import { IssuancePolicyBody, IssuancePolicyDocument } from '../../../services/policy/issuance-policy-schemas.ts';

const PATH = '/v1/private-certificate-authorities/:ca_id/issuance-policy';

export async function issuancePolicyRoutes(app: TypedApp): Promise<void> {
  const { issuancePolicies } = app.services;

  app.get(
    PATH,
    routeOptions({
      tag: 'certificate-authorities',
      action: 'pca:ca:get',
      summary: "Show a CA's issuance policy",
      operationId: 'showIssuancePolicy',
      ok: IssuancePolicyDocument,
      ...byId,
    }),
    async function showIssuancePolicy(request) {
      return issuancePolicies.show(contextOf(request), request.params.ca_id);
    },
  );

  app.put(
    PATH,
    routeOptions({
      tag: 'certificate-authorities',
      action: 'pca:ca:create',
      auditAction: 'pca:ca:setIssuancePolicy',
      summary: "Replace a CA's issuance policy",
      operationId: 'updateIssuancePolicy',
      body: IssuancePolicyBody,
      ok: IssuancePolicyDocument,
      ...byId,
    }),
    async function updateIssuancePolicy(request) {
      return issuancePolicies.replace(contextOf(request), request.params.ca_id, request.body);
    },
  );
}
