/**
 * Revocation and its settings (§4.1 rows 13-16 and 31, §4.2.7, §4.2.9, §4.2.10, §4.4.6) and the authenticated
 * CRL read (§10.5).
 */
import { Type } from 'typebox';
import { crlPem } from '../../../services/revocation/crl-service.ts';
import { CRL_VALID_DAYS, REVOCATION_REASON_NAMES } from '../../../services/revocation/revocation-rules.ts';
import { StringEnum } from '../../../schemas/common.ts';
import { contextOf } from '../../request-context.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';
import { byCaId } from '../ca/ca-schemas.ts';
import { CrlName, ObsBucketName } from '../../../services/ca/ca-input.ts';
import { CertificateIdParams } from '../../../services/certificates/certificate-input.ts';
import { certificateIdFieldErrors } from '../certificates/certificate-schemas.ts';

const CA = '/v1/private-certificate-authorities';
const CERT = '/v1/private-certificates';
const byCa = { ...byCaId, tag: 'certificate-authorities' };

/**
 * `{}` or `{"reason": ...}`; a missing body is refused (§4.4.6). An enum, not a union of literals: a refusal then
 * lists the reasons (Ajv's message for a union names no value).
 */
const RevokeBody = Type.Object({
  reason: Type.Optional(StringEnum(REVOCATION_REASON_NAMES, { description: 'Default UNSPECIFIED' })),
});
const EnableCrlBody = Type.Object({
  valid_days: Type.Integer({
    minimum: CRL_VALID_DAYS.min,
    maximum: CRL_VALID_DAYS.max,
    description: 'nextUpdate = thisUpdate + valid_days',
  }),
  crl_name: Type.Optional(CrlName),
  obs_bucket_name: Type.Optional(ObsBucketName),
});
const OcspSwitchBody = Type.Object({ ocsp_switch: Type.Boolean() });
const CrlResponse = Type.Object({
  crl: Type.String({ description: 'PEM X509 CRL, \\r\\n line breaks' }),
  crl_number: Type.Integer(),
  this_update: Type.Integer({ description: 'ms' }),
  next_update: Type.Integer({ description: 'ms' }),
  revoked_count: Type.Integer(),
});

export async function revocationRoutes(app: TypedApp): Promise<void> {
  const { revocations, crls } = app.services.revocation;

  app.post(
    `${CERT}/:certificate_id/revoke`,
    routeOptions({
      action: 'pca:cert:revoke',
      tag: 'certificates',
      summary: 'Revoke a certificate',
      operationId: 'revokeCertificate',
      params: CertificateIdParams,
      fieldErrorCodes: certificateIdFieldErrors,
      body: RevokeBody,
    }),
    async function revokeCertificate(request, reply) {
      await revocations.revokeCertificate(contextOf(request), request.params.certificate_id, request.body.reason);
      return noContent(reply);
    },
  );

  app.post(
    `${CA}/:ca_id/revoke`,
    routeOptions({
      action: 'pca:cert:revoke',
      auditAction: 'pca:ca:revoke',
      summary: 'Revoke a subordinate CA',
      operationId: 'revokeCertificateAuthority',
      ...byCa,
      body: RevokeBody,
    }),
    async function revokeCa(request, reply) {
      await revocations.revokeCa(contextOf(request), request.params.ca_id, request.body.reason);
      return noContent(reply);
    },
  );

  app.post(
    `${CA}/:ca_id/crl/enable`,
    routeOptions({
      action: 'pca:ca:create',
      auditAction: 'pca:ca:crl:enable',
      summary: "Enable the CA's CRL",
      operationId: 'enableCertificateAuthorityCrl',
      ...byCa,
      body: EnableCrlBody,
    }),
    async function enableCrl(request, reply) {
      const { valid_days, crl_name, obs_bucket_name } = request.body;
      await revocations.enableCrl(contextOf(request), request.params.ca_id, {
        validDays: valid_days,
        crlName: crl_name,
        // "" names no bucket (clients send an unset field so, and publication reads it as none): stored as null, as
        // §5.4's "value or null" has it, not echoed back as "".
        obsBucketName: obs_bucket_name || null,
      });
      return noContent(reply);
    },
  );

  app.post(
    `${CA}/:ca_id/crl/disable`,
    routeOptions({
      action: 'pca:ca:create',
      auditAction: 'pca:ca:crl:disable',
      summary: "Disable the CA's CRL (the public CRL stays served)",
      operationId: 'disableCertificateAuthorityCrl',
      ...byCa,
    }),
    async function disableCrl(request, reply) {
      await revocations.disableCrl(contextOf(request), request.params.ca_id);
      return noContent(reply);
    },
  );

  app.post(
    `${CA}/:ca_id/ocsp/switch`,
    routeOptions({
      action: 'pca:ca:create',
      auditAction: 'pca:ca:ocsp:switch',
      summary: 'Turn the OCSP URL in newly issued certificates on or off',
      operationId: 'updateOcspSwitch',
      ...byCa,
      body: OcspSwitchBody,
    }),
    async function switchOcsp(request, reply) {
      await revocations.setOcspSwitch(contextOf(request), request.params.ca_id, request.body.ocsp_switch);
      return noContent(reply);
    },
  );

  app.get(
    `${CA}/:ca_id/crl`,
    routeOptions({
      action: 'pca:ca:get',
      summary: "The CA's current CRL in PEM, with its number, dates and entry count",
      operationId: 'showCertificateAuthorityCrl',
      ...byCa,
      ok: CrlResponse,
    }),
    async function showCrl(request) {
      const crl = await crls.readCrl(contextOf(request), request.params.ca_id);
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
