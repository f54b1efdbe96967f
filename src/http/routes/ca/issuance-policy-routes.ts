/** A CA's issuance policy (issue #19): read it, or replace it (`{}` removes it). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { contextOf } from '../../request-context.ts';
import { routeOptions } from './ca-routes.ts';
import { CaIdParams, caFieldErrors } from './ca-schemas.ts';
import { IssuancePolicyBody, IssuancePolicyDocument } from '../../../services/policy/issuance-policy-schemas.ts';

const PATH = '/v1/private-certificate-authorities/:ca_id/issuance-policy';
const idOf = (request: FastifyRequest): string => (request.params as { ca_id: string }).ca_id;

export async function issuancePolicyRoutes(app: FastifyInstance): Promise<void> {
  const { issuancePolicies } = app.services;
  const byId = { params: CaIdParams, fieldErrorCodes: { ca_id: caFieldErrors.ca_id } };

  app.get(PATH, routeOptions({ action: 'pca:ca:get', summary: "Show a CA's issuance policy", operationId: 'showIssuancePolicy', ok: IssuancePolicyDocument, ...byId }), (request) =>
    issuancePolicies.show(contextOf(request), idOf(request)),
  );

  app.put(PATH, routeOptions({ action: 'pca:ca:create', auditAction: 'pca:ca:setIssuancePolicy', summary: "Replace a CA's issuance policy", operationId: 'updateIssuancePolicy', body: IssuancePolicyBody, ok: IssuancePolicyDocument, ...byId }), (request) =>
    issuancePolicies.replace(contextOf(request), idOf(request), request.body),
  );
}
