/** Private certificates (§4.1 rows 25-33 without revoke): issuance, CSR parsing, list, show, export, delete, quota. */
import type { FastifyInstance } from 'fastify';
import type {
  CreateCertificateByCsrRequest,
  CreateCertificateRequest,
} from '../../../services/certificates/issuance-service.ts';
import type { ExportRequest, ListCertificatesQuery } from '../../../services/certificates/certificate-service.ts';
import { contextOf } from '../../request-context.ts';
import { NoContent, bytes, errorResponses, pageOf } from '../../schemas/common.ts';
import {
  CertificateIdParams,
  CertificateIdResponse,
  CertificateObject,
  CreateCertificateBody,
  CreateCertificateByCsrBody,
  ExportBody,
  ExportResponse,
  IdempotencyHeaders,
  ListQuery,
  ListResponse,
  ParseCsrBody,
  ParsedCsrResponse,
  QuotaResponse,
  certificateIdFieldErrors,
  issuanceFieldErrors,
} from './certificate-schemas.ts';

const CERT = '/v1/private-certificates';
const tags = ['certificates'];
const { 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound } = errorResponses;
const conflict = { ...errorResponses[400], description: 'Idempotency-Key reused with another body' };

type IdParams = { certificate_id: string };

export async function certificateRoutes(app: FastifyInstance): Promise<void> {
  const { issuance, certificates } = app.services;

  app.post(
    CERT,
    {
      config: { action: 'pca:ca:issueCert', fieldErrorCodes: issuanceFieldErrors },
      schema: {
        tags,
        summary: 'Issue a certificate with a server-generated key',
        operationId: 'createCertificate',
        headers: IdempotencyHeaders,
        body: CreateCertificateBody,
        response: { 200: CertificateIdResponse, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound, 409: conflict },
      },
    },
    async (request) => {
      const body = request.body as CreateCertificateRequest;
      const id = await issuance.create(contextOf(request), body, request.headers['idempotency-key']);
      return { certificate_id: id };
    },
  );

  app.post(
    `${CERT}/csr`,
    {
      config: { action: 'pca:ca:issueCert', fieldErrorCodes: issuanceFieldErrors },
      schema: {
        tags,
        summary: 'Issue a certificate (or a CSR-held INTERMEDIATE_CA) from a CSR',
        operationId: 'createCertificateByCsr',
        headers: IdempotencyHeaders,
        body: CreateCertificateByCsrBody,
        response: { 200: CertificateIdResponse, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound, 409: conflict },
      },
    },
    async (request) => {
      const body = request.body as CreateCertificateByCsrRequest;
      const id = await issuance.createByCsr(contextOf(request), body, request.headers['idempotency-key']);
      return { certificate_id: id };
    },
  );

  app.post(
    `${CERT}/csr/parse`,
    {
      config: { action: 'pca:ca:issueCert' },
      schema: {
        tags,
        summary: 'Parse a CSR',
        operationId: 'parseCertificateSigningRequest',
        body: ParseCsrBody,
        response: { 200: ParsedCsrResponse, 400: badRequest, 401: unauthorized, 403: forbidden },
      },
    },
    async (request) => issuance.parseCsr((request.body as { csr: string }).csr),
  );

  app.get(
    CERT,
    {
      config: { action: 'pca:cert:list' },
      schema: {
        tags,
        summary: 'List certificates',
        operationId: 'listCertificate',
        querystring: ListQuery,
        response: { 200: ListResponse, 400: badRequest, 401: unauthorized, 403: forbidden },
      },
    },
    async (request) => {
      const query = request.query as Omit<ListCertificatesQuery, 'limit' | 'offset'> & { limit?: number; offset?: number };
      return certificates.list(contextOf(request), { ...query, ...pageOf(query) });
    },
  );

  app.get(
    `${CERT}/quotas`,
    {
      config: { action: 'pca:cert:quota' },
      schema: {
        tags,
        summary: 'Certificate quota',
        operationId: 'showCertificateQuota',
        response: { 200: QuotaResponse, 401: unauthorized, 403: forbidden },
      },
    },
    async (request) => certificates.quota(contextOf(request)),
  );

  app.get(
    `${CERT}/:certificate_id`,
    {
      config: { action: 'pca:cert:get', fieldErrorCodes: certificateIdFieldErrors },
      schema: {
        tags,
        summary: 'Show a certificate',
        operationId: 'showCertificate',
        params: CertificateIdParams,
        response: { 200: CertificateObject, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound },
      },
    },
    async (request) => certificates.show(contextOf(request), (request.params as IdParams).certificate_id),
  );

  app.post(
    `${CERT}/:certificate_id/export`,
    {
      config: { action: 'pca:cert:export', fieldErrorCodes: certificateIdFieldErrors },
      schema: {
        tags,
        summary: 'Export a certificate (JSON, or a zip per server type)',
        operationId: 'exportCertificate',
        params: CertificateIdParams,
        body: ExportBody,
        response: {
          200: {
            description: 'JSON, or with is_compressed "true" a zip (Content-Disposition names it <common name>_<type>.zip)',
            content: { 'application/json': { schema: ExportResponse }, 'application/zip': { schema: bytes() } },
          },
          400: badRequest,
          401: unauthorized,
          403: forbidden,
          404: notFound,
        },
      },
    },
    async (request, reply) => {
      const body = (request.body ?? {}) as ExportRequest;
      const result = await certificates.export(contextOf(request), (request.params as IdParams).certificate_id, body);
      if (result.kind === 'json') return result.body;
      return reply
        .type('application/zip')
        .header('content-disposition', `attachment; filename="${result.filename}"`)
        .send(Buffer.from(result.bytes));
    },
  );

  app.delete(
    `${CERT}/:certificate_id`,
    {
      config: { action: 'pca:cert:delete', fieldErrorCodes: certificateIdFieldErrors },
      schema: {
        tags,
        summary: 'Delete a certificate (does not revoke)',
        operationId: 'deleteCertificate',
        params: CertificateIdParams,
        response: { 204: NoContent, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound },
      },
    },
    async (request, reply) => {
      await certificates.delete(contextOf(request), (request.params as IdParams).certificate_id);
      return reply.code(204).send();
    },
  );
}
