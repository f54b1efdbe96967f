/**
 * TypeBox schemas of the certificate endpoints' responses and headers (§4.4, §5.2-§5.8, §10.8, §10.9); the request
 * bodies, query and path are the services' (services/certificates/certificate-input.ts).
 */
import { Type } from 'typebox';
import { ErrorCode } from '../../../errors.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { DistinguishedNameOut, NullableString } from '../../../schemas/common.ts';

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: '§10.8' })),
});

/** The certificate object (§5.2): one named component of the document. */
export const CertificateSchema = Type.Object(
  {
    certificate_id: Type.String(),
    status: Type.String({ enum: ['ISSUED', 'REVOKED', 'EXPIRED'] }),
    issuer_id: Type.String(),
    issuer_name: NullableString,
    key_algorithm: Type.String(),
    signature_algorithm: Type.String(),
    freeze_flag: Type.Integer(),
    gen_mode: Type.String({ enum: ['GENERATE', 'CSR'] }),
    serial_number: Type.String(),
    create_time: Type.Integer(),
    not_before: Type.Integer(),
    not_after: Type.Integer(),
    delete_time: Type.Null(),
    distinguished_name: DistinguishedNameOut,
    enterprise_project_id: Type.String(),
    urn: Type.String(),
  },
  { $id: 'Certificate', title: 'Certificate', description: 'A private certificate' },
);
export const CertificateObject = Type.Ref('Certificate');

export const CertificateIdResponse = Type.Object({ certificate_id: Type.String() });

export const ParsedCsrResponse = Type.Object({
  key_algorithm: Type.String({ description: 'RSA or EC' }),
  key_algorithm_length: Type.Integer(),
  signature_algorithm: Type.String(),
  public_key: Type.String(),
  distinguished_name: DistinguishedNameOut,
});

export const ListResponse = Type.Object({ total: Type.Integer(), certificates: Type.Array(CertificateObject) });

export const QuotaResponse = Type.Object({
  quotas: Type.Object({
    resources: Type.Array(Type.Object({ type: Type.String(), used: Type.Integer(), quota: Type.Integer() })),
  }),
});

const pem = (description: string) => Type.Optional(Type.String({ description }));

/** JSON export (is_compressed false): PEM texts; for ISTIO, the four files of Istio's cacerts Secret (§10.9). */
export const ExportResponse = Type.Object(
  {
    certificate: pem('The certificate (PEM)'),
    certificate_chain: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'Issuing CA first, root last (PEM)' })),
    private_key: Type.Optional(
      Type.Union([Type.String(), Type.Null()], {
        description: 'The server-generated key (PEM; PKCS#8 encrypted with password); null for a certificate issued from a CSR',
      }),
    ),
    'ca-cert.pem': pem('ISTIO: the intermediate CA certificate'),
    'ca-key.pem': pem("ISTIO: the intermediate CA's key"),
    'root-cert.pem': pem('ISTIO: the root certificate'),
    'cert-chain.pem': pem('ISTIO: the intermediate CA certificate then its chain to the root'),
  },
  { description: 'certificate, certificate_chain and private_key; for type ISTIO the four cacerts files instead' },
);

/** Schema violations under these fields get the contract's specific codes. */
export const issuanceFieldErrors: FieldErrorCodes = {
  issuer_id: ErrorCode.InvalidCaId,
  key_algorithm: ErrorCode.InvalidKeyAlgorithm,
  signature_algorithm: ErrorCode.InvalidSignatureAlgorithm,
  distinguished_name: ErrorCode.InvalidDistinguishedName,
  validity: ErrorCode.InvalidValidity,
  path_length: ErrorCode.InvalidPathLength,
};

export const certificateIdFieldErrors: FieldErrorCodes = { certificate_id: ErrorCode.InvalidParameterFormat };
