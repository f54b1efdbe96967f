/**
 * Certificate authorities (§4.1 rows 1-12 and 17, §4.2): create, order, list, show, activate, CSR, import,
 * export, enable, disable, delete, restore, quota; and the fixed §4.5 endpoints.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import type { TSchema } from 'typebox';
import { Type } from 'typebox';
import type { Action } from '../../../auth/actions.ts';
import type { ActivateCaInput, CreateCaInput, ListCaQuery as ListQuery, OrderCaInput } from '../../../services/ca/ca-service.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { contextOf } from '../../request-context.ts';
import { NoContent, errorResponses } from '../../../schemas/common.ts';
import {
  ActivateCaBody,
  CaIdParams,
  CaIdResponse,
  CaObject,
  CaQuotaResponse,
  CreateCaBody,
  CsrResponse,
  DeleteCaQuery,
  ExportCaResponse,
  ImportBody,
  ListCaQuery,
  ListCaResponse,
  OrderBody,
  OrderResponse,
  caFieldErrors,
} from './ca-schemas.ts';

const CA = '/v1/private-certificate-authorities';
const { 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound } = errorResponses;

interface RouteSpec {
  /** The permission the credential needs (§10.7). */
  action: Action;
  /** The operation's own audit action, when it is not the permission (refused calls are audited under it). */
  auditAction?: string;
  summary: string;
  operationId: string;
  params?: TSchema;
  query?: TSchema;
  body?: TSchema;
  /** The 200 body; absent for 204 actions. */
  ok?: TSchema;
  fieldErrorCodes?: FieldErrorCodes;
  /** When a route without path parameters still answers 404 (a body field names a CA that does not exist). */
  notFound?: string;
}

/** The options every CA route shares: action, tags and the documented error responses. */
export function routeOptions(spec: RouteSpec, tag = 'certificate-authorities'): RouteShorthandOptions {
  return {
    config: { action: spec.action, auditAction: spec.auditAction, fieldErrorCodes: spec.fieldErrorCodes },
    schema: {
      tags: [tag],
      summary: spec.summary,
      operationId: spec.operationId,
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.query ? { querystring: spec.query } : {}),
      ...(spec.body ? { body: spec.body } : {}),
      response: {
        ...(spec.ok ? { 200: spec.ok } : { 204: NoContent }),
        400: badRequest,
        401: unauthorized,
        403: forbidden,
        ...(spec.params ? { 404: notFound } : spec.notFound ? { 404: { ...notFound, description: spec.notFound } } : {}),
      },
    },
  };
}

const idOf = (request: FastifyRequest): string => (request.params as { ca_id: string }).ca_id;
const noContent = (reply: FastifyReply) => reply.code(204).send();

/** One agency id per domain, stable across calls (§4.5). */
function agencyIdOf(domainId: string): string {
  const hex = createHash('sha256').update(`agency:${domainId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export async function caRoutes(app: FastifyInstance): Promise<void> {
  const { ca } = app.services;
  const byId = { params: CaIdParams, fieldErrorCodes: { ca_id: caFieldErrors.ca_id } };

  app.post(CA, routeOptions({ action: 'pca:ca:create', summary: 'Create a CA', operationId: 'createCertificateAuthority', body: CreateCaBody, ok: CaIdResponse, fieldErrorCodes: caFieldErrors, notFound: 'issuer_id (or ca_id) names no CA of the domain' }), (request) =>
    ca.create(contextOf(request), request.body as CreateCaInput),
  );

  app.post(`${CA}/order`, routeOptions({ action: 'pca:ca:create', summary: 'Buy yearly/monthly CAs', operationId: 'createCertificateAuthorityOrder', body: OrderBody, ok: OrderResponse }), (request) =>
    ca.order(contextOf(request), request.body as OrderCaInput),
  );

  app.get(CA, routeOptions({ action: 'pca:ca:list', summary: 'List CAs', operationId: 'listCertificateAuthority', query: ListCaQuery, ok: ListCaResponse }), (request) =>
    ca.list(contextOf(request), request.query as ListQuery),
  );

  app.get(`${CA}/quotas`, routeOptions({ action: 'pca:ca:quota', summary: 'CA quota', operationId: 'showCertificateAuthorityQuota', ok: CaQuotaResponse }), (request) =>
    ca.quota(contextOf(request)),
  );

  app.get(`${CA}/:ca_id`, routeOptions({ action: 'pca:ca:get', summary: 'Show a CA', operationId: 'showCertificateAuthority', ok: CaObject, ...byId }), (request) =>
    ca.show(contextOf(request), idOf(request)),
  );

  app.post(`${CA}/:ca_id/activate`, routeOptions({ action: 'pca:ca:create', auditAction: 'pca:ca:activate', summary: 'Activate a PENDING CA', operationId: 'issueCertificateAuthorityCertificate', body: ActivateCaBody, ...byId, fieldErrorCodes: caFieldErrors }), async (request, reply) => {
    await ca.activate(contextOf(request), idOf(request), (request.body ?? {}) as ActivateCaInput);
    return noContent(reply);
  });

  app.get(`${CA}/:ca_id/csr`, routeOptions({ action: 'pca:ca:export', summary: 'Export the CSR of a PENDING subordinate', operationId: 'exportCertificateAuthorityCsr', ok: CsrResponse, ...byId }), (request) =>
    ca.exportCsr(contextOf(request), idOf(request)),
  );

  app.post(`${CA}/:ca_id/import`, routeOptions({ action: 'pca:ca:import', summary: 'Import the externally signed CA certificate', operationId: 'importCertificateAuthorityCertificate', body: ImportBody, ...byId }), async (request, reply) => {
    await ca.importCertificate(contextOf(request), idOf(request), request.body as { certificate: string; certificate_chain?: string });
    return noContent(reply);
  });

  app.post(`${CA}/:ca_id/export`, routeOptions({ action: 'pca:ca:export', summary: 'Export the CA certificate and chain', operationId: 'exportCertificateAuthorityCertificate', ok: ExportCaResponse, ...byId }), (request) =>
    ca.exportCertificate(contextOf(request), idOf(request)),
  );

  const actions = [
    ['enable', 'Enable a DISABLED CA', 'enableCertificateAuthority', 'pca:ca:create', ca.enable],
    ['disable', 'Disable an ACTIVED CA', 'disableCertificateAuthority', 'pca:ca:create', ca.disable],
    ['restore', 'Restore a CA scheduled for deletion', 'restoreCertificateAuthority', 'pca:ca:delete', ca.restore],
  ] as const;
  for (const [verb, summary, operationId, action, run] of actions) {
    app.post(`${CA}/:ca_id/${verb}`, routeOptions({ action, auditAction: `pca:ca:${verb}`, summary, operationId, ...byId }), async (request, reply) => {
      await run(contextOf(request), idOf(request));
      return noContent(reply);
    });
  }

  app.delete(`${CA}/:ca_id`, routeOptions({ action: 'pca:ca:delete', summary: 'Schedule a CA deletion (PENDING: at once)', operationId: 'deleteCertificateAuthority', query: DeleteCaQuery, ...byId }), async (request, reply) => {
    await ca.delete(contextOf(request), idOf(request), (request.query as { pending_days: number }).pending_days);
    return noContent(reply);
  });

  // §4.5: fixed answers for Huawei's OBS-based CRL publication (this service publishes CRLs itself).
  const fixed = (path: string, method: 'GET' | 'POST', operationId: string, summary: string, ok: TSchema, answer: (request: FastifyRequest) => unknown) =>
    app.route({ method, url: `${CA}${path}`, ...routeOptions({ action: 'pca:ca:get', summary, operationId, ok }), handler: async (request) => answer(request) });
  const Granted = Type.Object({ agency_granted: Type.String() });
  const AgencyId = Type.Object({ agency_id: Type.String() });
  const granted = () => ({ agency_granted: 'true' });
  const agency = (request: FastifyRequest) => ({ agency_id: agencyIdOf(contextOf(request).domainId) });
  fixed('/obs/agencies', 'GET', 'showCertificateAuthorityObsAgency', 'OBS agency status (always granted)', Granted, granted);
  fixed('/obs/agencies', 'POST', 'createCertificateAuthorityObsAgency', 'Create the OBS agency (fixed id)', AgencyId, agency);
  fixed('/obs/buckets', 'GET', 'listCertificateAuthorityObsBucket', 'OBS buckets (none)', Type.Object({ total: Type.Integer(), obs_buckets: Type.Array(Type.Object({ bucket_name: Type.String(), create_time: Type.Integer() })) }), () => ({ total: 0, obs_buckets: [] }));
  fixed('/agency', 'GET', 'showAgency', 'Agency status (always granted)', Granted, granted);
  fixed('/agencies', 'POST', 'createAgency', 'Create the agency (fixed id)', AgencyId, agency);
}
