/** TypeBox schemas of the certificate endpoints (§4.4, §5.2-§5.8, §10.8, §10.9). Request schemas have no $ref. */
import { Type } from 'typebox';
import { ErrorCode } from '../../../errors.ts';
import { HASH_ALGORITHMS, KEY_ALGORITHMS } from '../../../x509/algorithms.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { DistinguishedNameOut, NullableString, PagingQuery, SortDirection, UUID_PATTERN } from '../../schemas/common.ts';
import { NameConstraintsIn } from '../ca/issuance-policy-schemas.ts';

const text = (description: string) => Type.String({ description });

export const CertDistinguishedName = Type.Object(
  {
    common_name: Type.String({ description: '1-64 characters; the only required attribute' }),
    country: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    state: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    locality: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    organization: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    organizational_unit: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  },
  { description: 'Attributes left out are inherited from the issuing CA (§5.2)' },
);

const Validity = Type.Object({
  type: Type.String({ enum: ['YEAR', 'MONTH', 'DAY', 'HOUR'] }),
  value: Type.Integer({ minimum: 1 }),
  start_from: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'not_before in ms; default now' })),
});

const SubjectAlternativeName = Type.Object({ type: text('DNS, IP, EMAIL or URI'), value: Type.String() });

const ExtendedKeyUsage = Type.Object({
  server_auth: Type.Optional(Type.Boolean()),
  client_auth: Type.Optional(Type.Boolean()),
  code_signing: Type.Optional(Type.Boolean()),
  email_protection: Type.Optional(Type.Boolean()),
  time_stamping: Type.Optional(Type.Boolean()),
  smart_card_logon: Type.Optional(Type.Boolean()),
});

const CustomizedExtension = Type.Object(
  { object_identifier: Type.Optional(Type.String()), value: Type.Optional(Type.String()) },
  { description: 'No member: no extension; object_identifier alone: an empty value' },
);

const CertificateType = Type.String({ enum: ['ENTITY_CERT', 'INTERMEDIATE_CA'], description: 'Default ENTITY_CERT' });
const PathLength = Type.Integer({ minimum: 0, maximum: 6, description: 'INTERMEDIATE_CA only; below the issuer\'s' });
const IssuerId = Type.String({ minLength: 1, maxLength: 256, description: 'CA id or URN' });

export const CreateCertificateBody = Type.Object({
  issuer_id: IssuerId,
  distinguished_name: CertDistinguishedName,
  validity: Validity,
  key_algorithm: Type.Optional(Type.String({ enum: [...KEY_ALGORITHMS], description: 'Default: the issuer\'s' })),
  signature_algorithm: Type.Optional(Type.String({ enum: [...HASH_ALGORITHMS], description: 'Default: the issuer\'s' })),
  key_usages: Type.Optional(Type.Array(Type.String(), { maxItems: 9 })),
  subject_alternative_names: Type.Optional(Type.Array(SubjectAlternativeName)),
  extended_key_usage: Type.Optional(ExtendedKeyUsage),
  customized_extension: Type.Optional(CustomizedExtension),
  enterprise_project_id: Type.Optional(Type.String({ maxLength: 64 })),
  type: Type.Optional(CertificateType),
  path_length: Type.Optional(PathLength),
  name_constraints: Type.Optional(NameConstraintsIn),
});

export const CreateCertificateByCsrBody = Type.Object(
  {
    issuer_id: IssuerId,
    csr: Type.String({ minLength: 1, description: 'PEM PKCS#10, at most 32 KB' }),
    validity: Validity,
    type: Type.Optional(CertificateType),
    path_length: Type.Optional(PathLength),
    enterprise_project_id: Type.Optional(Type.String({ maxLength: 64 })),
  },
  {
    examples: [
      {
        issuer_id: '3b6e9a4c-2f1d-4c8e-9a7b-5d2e1f0c8a6b',
        csr: '-----BEGIN CERTIFICATE REQUEST-----\nMIIB...\n-----END CERTIFICATE REQUEST-----\n',
        validity: { type: 'DAY', value: 90 },
      },
    ],
  },
);

export const ParseCsrBody = Type.Object({ csr: Type.String({ minLength: 1 }) });

export const ExportBody = Type.Object({
  is_compressed: Type.Optional(
    Type.Union([Type.String(), Type.Boolean()], { description: '"true" or true: the response is a zip (application/zip) laid out for `type`; otherwise JSON. "true"/"false" in any case' }),
  ),
  type: Type.Optional(Type.String({ description: 'APACHE, NGINX, IIS, TOMCAT, OTHER or ISTIO (any case): the server the files are for', examples: ['NGINX'] })),
  password: Type.Optional(Type.String({ maxLength: 32 })),
  is_sm_standard: Type.Optional(Type.String()),
});

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ description: '1-64 characters (§10.8)' })),
});

export const CertificateIdParams = Type.Object({ certificate_id: Type.String({ pattern: UUID_PATTERN }) });

export const ListQuery = Type.Object({
  ...PagingQuery,
  name: Type.Optional(Type.String({ maxLength: 64, description: 'Empty: no filter' })),
  status: Type.Optional(Type.String({ enum: ['ISSUED', 'REVOKED', 'EXPIRED'] })),
  sort_key: Type.Optional(Type.String({ enum: ['create_time', 'common_name', 'issuer_name', 'not_after'] })),
  sort_dir: SortDirection,
});



/** The certificate object (§5.2): one named component of the document. */
export const CertificateSchema = Type.Object({
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
}, { $id: 'Certificate', title: 'Certificate', description: 'A private certificate' });
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
    private_key: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'The server-generated key (PEM; PKCS#8 encrypted with password); null for a certificate issued from a CSR' })),
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
