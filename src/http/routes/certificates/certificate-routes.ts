/** Private certificates (§4.1 rows 25-33 without revoke): issuance, CSR parsing, list, show, export, delete, quota. */
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { headersAsSent } from '../../../auth/sdk-hmac.ts';
import {
  CertificateIdParams,
  CreateCertificateBody,
  CreateCertificateByCsrBody,
  ExportBody,
  ListQuery,
  ParseCsrBody,
} from '../../../services/certificates/certificate-input.ts';
import { bytes, errorResponses, pageOf } from '../../../schemas/common.ts';
import { contextOf } from '../../request-context.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';
import {
  CertificateIdResponse,
  CertificateObject,
  ExportResponse,
  IdempotencyHeaders,
  ListResponse,
  ParsedCsrResponse,
  QuotaResponse,
  certificateIdFieldErrors,
  issuanceFieldErrors,
} from './certificate-schemas.ts';

const CERT = '/v1/private-certificates';
const tag = 'certificates';
const conflict = { ...errorResponses[400], description: 'Idempotency-Key reused with another body' };
/** Both issuance routes: the same permission, field codes, idempotency header and answers (a 409 on a reused key). */
const issuing = {
  action: 'pca:ca:issueCert',
  tag,
  fieldErrorCodes: issuanceFieldErrors,
  headers: IdempotencyHeaders,
  ok: CertificateIdResponse,
  notFound: 'Not found',
  responses: { 409: conflict },
} as const;
const byId = { params: CertificateIdParams, fieldErrorCodes: certificateIdFieldErrors };

/**
 * The Idempotency-Key header as sent: Node (and light-my-request on Lambda, given API Gateway's multiValueHeaders)
 * joins a repeated header into one value ("k, k"), which would pass as a different key, so each line is handed on,
 * read from rawHeaders as the signature check reads them; only when the header is there.
 */
function idempotencyKeyOf(request: FastifyRequest): string | string[] | undefined {
  if (request.headers['idempotency-key'] === undefined) return undefined;
  return headersAsSent(request.raw.rawHeaders)['idempotency-key'];
}

export async function certificateRoutes(app: TypedApp): Promise<void> {
  const { issuance, certificates } = app.services;

  app.post(
    CERT,
    routeOptions({
      ...issuing,
      summary: 'Issue a certificate with a server-generated key',
      operationId: 'createCertificate',
      body: CreateCertificateBody,
    }),
    async function createCertificate(request) {
      return { certificate_id: await issuance.create(contextOf(request), request.body, idempotencyKeyOf(request)) };
    },
  );

  app.post(
    `${CERT}/csr`,
    routeOptions({
      ...issuing,
      summary: 'Issue a certificate (or a CSR-held INTERMEDIATE_CA) from a CSR',
      operationId: 'createCertificateByCsr',
      body: CreateCertificateByCsrBody,
    }),
    async function createCertificateByCsr(request) {
      return { certificate_id: await issuance.createByCsr(contextOf(request), request.body, idempotencyKeyOf(request)) };
    },
  );

  app.post(
    `${CERT}/csr/parse`,
    routeOptions({
      action: 'pca:ca:issueCert',
      tag,
      summary: 'Parse a CSR',
      operationId: 'parseCertificateSigningRequest',
      body: ParseCsrBody,
      ok: ParsedCsrResponse,
    }),
    async function parseCsr(request) {
      return issuance.parseCsr(request.body.csr);
    },
  );

  app.get(
    CERT,
    routeOptions({
      action: 'pca:cert:list',
      tag,
      summary: 'List certificates',
      operationId: 'listCertificate',
      query: ListQuery,
      ok: ListResponse,
    }),
    async function listCertificates(request) {
      return certificates.list(contextOf(request), { ...request.query, ...pageOf(request.query) });
    },
  );

  app.get(
    `${CERT}/quotas`,
    routeOptions({
      action: 'pca:cert:quota',
      tag,
      summary: 'Certificate quota',
      operationId: 'showCertificateQuota',
      ok: QuotaResponse,
      errors: [401, 403],
    }),
    async function showQuota(request) {
      return certificates.quota(contextOf(request));
    },
  );

  app.get(
    `${CERT}/:certificate_id`,
    routeOptions({
      action: 'pca:cert:get',
      tag,
      summary: 'Show a certificate',
      operationId: 'showCertificate',
      ok: CertificateObject,
      ...byId,
    }),
    async function showCertificate(request) {
      return certificates.show(contextOf(request), request.params.certificate_id);
    },
  );

  app.post(
    `${CERT}/:certificate_id/export`,
    routeOptions({
      action: 'pca:cert:export',
      tag,
      summary: 'Export a certificate (JSON, or a zip per server type)',
      operationId: 'exportCertificate',
      body: ExportBody,
      // Every export field has a default (§4.4.5: JSON, type OTHER): no body, or null, exports as {} does.
      optionalBody: true,
      ...byId,
      responses: {
        200: {
          description: 'JSON, or with is_compressed "true" a zip (Content-Disposition names it <common name>_<type>.zip)',
          headers: {
            'Content-Disposition': Type.String({ description: 'The zip only: attachment; filename="<common name>_<type>.zip"' }),
          },
          content: { 'application/json': { schema: ExportResponse }, 'application/zip': { schema: bytes() } },
        },
      },
    }),
    async function exportCertificate(request, reply) {
      const result = await certificates.export(contextOf(request), request.params.certificate_id, request.body);
      if (result.kind === 'json') return result.body;
      return reply
        .type('application/zip')
        .header('content-disposition', `attachment; filename="${result.filename}"`)
        .send(Buffer.from(result.bytes));
    },
  );

  app.delete(
    `${CERT}/:certificate_id`,
    routeOptions({
      action: 'pca:cert:delete',
      tag,
      summary: 'Delete a certificate (does not revoke)',
      operationId: 'deleteCertificate',
      ...byId,
    }),
    async function deleteCertificate(request, reply) {
      await certificates.delete(contextOf(request), request.params.certificate_id);
      return noContent(reply);
    },
  );
}
