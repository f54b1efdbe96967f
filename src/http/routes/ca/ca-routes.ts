/**
 * Certificate authorities (§4.1 rows 1-12 and 17, §4.2): create, order, list, show, activate, CSR, import,
 * export, enable, disable, delete, restore, quota; and the fixed §4.5 endpoints.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { pageOf } from '../../../schemas/common.ts';
import { ActivateCaBody, CreateCaBody, DeleteCaQuery, ImportBody, ListCaQuery, OrderBody } from '../../../services/ca/ca-input.ts';
import { PENDING_DAYS } from '../../../services/ca/ca-service.ts';
import { contextOf } from '../../request-context.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';
import {
  CaIdResponse,
  CaObject,
  CaQuotaResponse,
  CsrResponse,
  ExportCaResponse,
  ListCaResponse,
  OrderResponse,
  byCaId as byId,
  caFieldErrors,
} from './ca-schemas.ts';

const CA = '/v1/private-certificate-authorities';
const tag = 'certificate-authorities';

/** One agency id per domain, stable across calls (§4.5). */
function agencyIdOf(domainId: string): string {
  const hex = createHash('sha256').update(`agency:${domainId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export async function caRoutes(app: TypedApp): Promise<void> {
  const { ca } = app.services;

  app.post(
    CA,
    routeOptions({
      action: 'pca:ca:create',
      tag,
      summary: 'Create a CA',
      operationId: 'createCertificateAuthority',
      body: CreateCaBody,
      ok: CaIdResponse,
      fieldErrorCodes: caFieldErrors,
      notFound: 'issuer_id (or ca_id) names no CA of the domain',
    }),
    async function createCa(request) {
      return ca.create(contextOf(request), request.body);
    },
  );

  app.post(
    `${CA}/order`,
    routeOptions({
      action: 'pca:ca:create',
      tag,
      summary: 'Buy yearly/monthly CAs',
      operationId: 'createCertificateAuthorityOrder',
      body: OrderBody,
      ok: OrderResponse,
    }),
    async function orderCas(request) {
      return ca.order(contextOf(request), request.body);
    },
  );

  app.get(
    CA,
    routeOptions({
      action: 'pca:ca:list',
      tag,
      summary: 'List CAs',
      operationId: 'listCertificateAuthority',
      query: ListCaQuery,
      ok: ListCaResponse,
    }),
    async function listCas(request) {
      return ca.list(contextOf(request), {
        ...request.query,
        ...pageOf(request.query),
        sort_key: request.query.sort_key ?? 'create_time',
        sort_dir: request.query.sort_dir ?? 'DESC',
      });
    },
  );

  app.get(
    `${CA}/quotas`,
    routeOptions({ action: 'pca:ca:quota', tag, summary: 'CA quota', operationId: 'showCertificateAuthorityQuota', ok: CaQuotaResponse }),
    async function showCaQuota(request) {
      return ca.quota(contextOf(request));
    },
  );

  app.get(
    `${CA}/:ca_id`,
    routeOptions({ action: 'pca:ca:get', tag, summary: 'Show a CA', operationId: 'showCertificateAuthority', ok: CaObject, ...byId }),
    async function showCa(request) {
      return ca.show(contextOf(request), request.params.ca_id);
    },
  );

  app.post(
    `${CA}/:ca_id/activate`,
    routeOptions({
      action: 'pca:ca:create',
      auditAction: 'pca:ca:activate',
      tag,
      summary: 'Activate a PENDING CA',
      operationId: 'issueCertificateAuthorityCertificate',
      body: ActivateCaBody,
      ...byId,
      fieldErrorCodes: caFieldErrors,
    }),
    async function activateCa(request, reply) {
      await ca.activate(contextOf(request), request.params.ca_id, request.body);
      return noContent(reply);
    },
  );

  app.get(
    `${CA}/:ca_id/csr`,
    routeOptions({
      action: 'pca:ca:export',
      tag,
      summary: 'Export the CSR of a PENDING subordinate',
      operationId: 'exportCertificateAuthorityCsr',
      ok: CsrResponse,
      ...byId,
    }),
    async function exportCaCsr(request) {
      return ca.exportCsr(contextOf(request), request.params.ca_id);
    },
  );

  app.post(
    `${CA}/:ca_id/import`,
    routeOptions({
      action: 'pca:ca:import',
      tag,
      summary: 'Import the externally signed CA certificate',
      operationId: 'importCertificateAuthorityCertificate',
      body: ImportBody,
      ...byId,
    }),
    async function importCaCertificate(request, reply) {
      await ca.importCertificate(contextOf(request), request.params.ca_id, request.body);
      return noContent(reply);
    },
  );

  app.post(
    `${CA}/:ca_id/export`,
    routeOptions({
      action: 'pca:ca:export',
      tag,
      summary: 'Export the CA certificate and chain',
      operationId: 'exportCertificateAuthorityCertificate',
      ok: ExportCaResponse,
      ...byId,
    }),
    async function exportCaCertificate(request) {
      return ca.exportCertificate(contextOf(request), request.params.ca_id);
    },
  );

  const transitions = [
    ['enable', 'Enable a DISABLED CA', 'enableCertificateAuthority', 'pca:ca:create', ca.enable],
    ['disable', 'Disable an ACTIVED CA', 'disableCertificateAuthority', 'pca:ca:create', ca.disable],
    ['restore', 'Restore a CA scheduled for deletion', 'restoreCertificateAuthority', 'pca:ca:delete', ca.restore],
  ] as const;
  for (const [verb, summary, operationId, action, run] of transitions) {
    app.post(
      `${CA}/:ca_id/${verb}`,
      routeOptions({ action, auditAction: `pca:ca:${verb}`, tag, summary, operationId, ...byId }),
      async function transitionCa(request, reply) {
        await run(contextOf(request), request.params.ca_id);
        return noContent(reply);
      },
    );
  }

  app.delete(
    `${CA}/:ca_id`,
    {
      ...routeOptions({
        action: 'pca:ca:delete',
        tag,
        summary: 'Schedule a CA deletion (PENDING: at once)',
        operationId: 'deleteCertificateAuthority',
        query: DeleteCaQuery,
        ...byId,
      }),
      // Huawei's Go SDK sends its required-string pending_days even when unset, as `?pending_days`: the default then.
      preValidation: async (request: FastifyRequest) => {
        const query = request.query as { pending_days?: string };
        if (query.pending_days === '') delete query.pending_days;
      },
    },
    async function deleteCa(request, reply) {
      await ca.delete(contextOf(request), request.params.ca_id, request.query.pending_days ?? PENDING_DAYS.default);
      return noContent(reply);
    },
  );

  // §4.5: fixed answers for Huawei's OBS-based CRL publication (this service publishes CRLs itself).
  const fixed = (
    path: string,
    method: 'GET' | 'POST',
    operationId: string,
    summary: string,
    ok: TSchema,
    answer: (request: FastifyRequest) => unknown,
  ) =>
    app.route({
      method,
      url: `${CA}${path}`,
      ...routeOptions({ action: 'pca:ca:get', tag, summary, operationId, ok }),
      handler: async (request) => answer(request),
    });
  const Granted = Type.Object({ agency_granted: Type.String() });
  const AgencyId = Type.Object({ agency_id: Type.String() });
  const granted = () => ({ agency_granted: 'true' });
  const agency = (request: FastifyRequest) => ({ agency_id: agencyIdOf(contextOf(request).domainId) });
  fixed('/obs/agencies', 'GET', 'showCertificateAuthorityObsAgency', 'OBS agency status (always granted)', Granted, granted);
  fixed('/obs/agencies', 'POST', 'createCertificateAuthorityObsAgency', 'Create the OBS agency (fixed id)', AgencyId, agency);
  fixed(
    '/obs/buckets',
    'GET',
    'listCertificateAuthorityObsBucket',
    'OBS buckets (none)',
    Type.Object({
      total: Type.Integer(),
      obs_buckets: Type.Array(Type.Object({ bucket_name: Type.String(), create_time: Type.Integer() })),
    }),
    () => ({ total: 0, obs_buckets: [] }),
  );
  fixed('/agency', 'GET', 'showAgency', 'Agency status (always granted)', Granted, granted);
  fixed('/agencies', 'POST', 'createAgency', 'Create the agency (fixed id)', AgencyId, agency);
}
