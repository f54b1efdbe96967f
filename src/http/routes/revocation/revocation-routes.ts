/**
 * Revocation and its settings (§4.1 rows 13-16 and 31, §4.2.7, §4.2.9, §4.2.10, §4.4.6) and the authenticated
 * CRL read (§10.5).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ErrorCode } from '../../../errors.ts';
import { crlPem } from '../../../services/revocation/crl-service.ts';
import { CRL_VALID_DAYS, REVOCATION_REASON_NAMES } from '../../../services/revocation/revocation-rules.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { contextOf } from '../../request-context.ts';
import { NoContent, errorResponses } from '../../../schemas/common.ts';
import { CertificateIdParams } from '../../../services/certificates/certificate-input.ts';
import { certificateIdFieldErrors } from '../certificates/certificate-schemas.ts';

const CA = '/v1/private-certificate-authorities';
const CERT = '/v1/private-certificates';
const { 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound } = errorResponses;
const actionResponses = { 204: NoContent, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound };

const CaIdParams = Type.Object({
  ca_id: Type.String({ minLength: 1, maxLength: 512, description: 'CA id or URN pca:{region}:{domain_id}:ca:{ca_id}' }),
});
const caIdFieldErrors: FieldErrorCodes = { ca_id: ErrorCode.InvalidCaId };

/** `{}` or `{"reason": ...}`; a missing body is refused (§4.4.6). */
const RevokeBody = Type.Object({
  reason: Type.Optional(Type.Union(REVOCATION_REASON_NAMES.map((name) => Type.Literal(name)), { description: 'Default UNSPECIFIED' })),
});
const EnableCrlBody = Type.Object({
  valid_days: Type.Integer({ minimum: CRL_VALID_DAYS.min, maximum: CRL_VALID_DAYS.max, description: 'nextUpdate = thisUpdate + valid_days' }),
  crl_name: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Default: the CA id' })),
  obs_bucket_name: Type.Optional(Type.String({ maxLength: 64, description: 'The bucket the CA publishes its CRL and certificate to, when the deployment publishes (CRL_PUBLISH_BUCKETS) and allows this one; else its first bucket' })),
});
const OcspSwitchBody = Type.Object({ ocsp_switch: Type.Boolean() });
const CrlResponse = Type.Object({
  crl: Type.String({ description: 'PEM X509 CRL, \\r\\n line breaks' }),
  crl_number: Type.Integer(),
  this_update: Type.Integer({ description: 'ms' }),
  next_update: Type.Integer({ description: 'ms' }),
  revoked_count: Type.Integer(),
});

type CaParams = { ca_id: string };
type RevokeRequest = { reason?: string };

export async function revocationRoutes(app: FastifyInstance): Promise<void> {
  const { revocations, crls } = app.services.revocation;

  app.post(
    `${CERT}/:certificate_id/revoke`,
    {
      config: { action: 'pca:cert:revoke', fieldErrorCodes: certificateIdFieldErrors },
      schema: {
        tags: ['certificates'],
        summary: 'Revoke a certificate',
        operationId: 'revokeCertificate',
        params: CertificateIdParams,
        body: RevokeBody,
        response: actionResponses,
      },
    },
    async (request, reply) => {
      const { certificate_id } = request.params as { certificate_id: string };
      await revocations.revokeCertificate(contextOf(request), certificate_id, (request.body as RevokeRequest).reason);
      return reply.code(204).send();
    },
  );

  app.post(
    `${CA}/:ca_id/revoke`,
    {
      config: { action: 'pca:cert:revoke', auditAction: 'pca:ca:revoke', fieldErrorCodes: caIdFieldErrors },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'Revoke a subordinate CA',
        operationId: 'revokeCertificateAuthority',
        params: CaIdParams,
        body: RevokeBody,
        response: actionResponses,
      },
    },
    async (request, reply) => {
      const { ca_id } = request.params as CaParams;
      await revocations.revokeCa(contextOf(request), ca_id, (request.body as RevokeRequest).reason);
      return reply.code(204).send();
    },
  );

  app.post(
    `${CA}/:ca_id/crl/enable`,
    {
      config: { action: 'pca:ca:create', auditAction: 'pca:ca:crl:enable', fieldErrorCodes: caIdFieldErrors },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'Enable the CA\'s CRL',
        operationId: 'enableCertificateAuthorityCrl',
        params: CaIdParams,
        body: EnableCrlBody,
        response: actionResponses,
      },
    },
    async (request, reply) => {
      const { ca_id } = request.params as CaParams;
      const body = request.body as { valid_days: number; crl_name?: string; obs_bucket_name?: string };
      await revocations.enableCrl(contextOf(request), ca_id, {
        validDays: body.valid_days,
        crlName: body.crl_name,
        obsBucketName: body.obs_bucket_name,
      });
      return reply.code(204).send();
    },
  );

  app.post(
    `${CA}/:ca_id/crl/disable`,
    {
      config: { action: 'pca:ca:create', auditAction: 'pca:ca:crl:disable', fieldErrorCodes: caIdFieldErrors },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'Disable the CA\'s CRL (the public CRL stays served)',
        operationId: 'disableCertificateAuthorityCrl',
        params: CaIdParams,
        response: actionResponses,
      },
    },
    async (request, reply) => {
      await revocations.disableCrl(contextOf(request), (request.params as CaParams).ca_id);
      return reply.code(204).send();
    },
  );

  app.post(
    `${CA}/:ca_id/ocsp/switch`,
    {
      config: { action: 'pca:ca:create', auditAction: 'pca:ca:ocsp:switch', fieldErrorCodes: caIdFieldErrors },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'Turn the OCSP URL in newly issued certificates on or off',
        operationId: 'updateOcspSwitch',
        params: CaIdParams,
        body: OcspSwitchBody,
        response: actionResponses,
      },
    },
    async (request, reply) => {
      const { ca_id } = request.params as CaParams;
      await revocations.setOcspSwitch(contextOf(request), ca_id, (request.body as { ocsp_switch: boolean }).ocsp_switch);
      return reply.code(204).send();
    },
  );

  app.get(
    `${CA}/:ca_id/crl`,
    {
      config: { action: 'pca:ca:get', fieldErrorCodes: caIdFieldErrors },
      schema: {
        tags: ['certificate-authorities'],
        summary: 'The CA\'s current CRL in PEM, with its number, dates and entry count',
        operationId: 'showCertificateAuthorityCrl',
        params: CaIdParams,
        response: { 200: CrlResponse, 400: badRequest, 401: unauthorized, 403: forbidden, 404: notFound },
      },
    },
    async (request) => {
      const crl = await crls.readCrl(contextOf(request), (request.params as CaParams).ca_id);
      return {
        crl: crlPem(crl.der),
        crl_number: Number(crl.crlNumber),
        this_update: crl.thisUpdate.getTime(),
        next_update: crl.nextUpdate.getTime(),
        revoked_count: crl.revokedCount,
      };
    },
  );
}
