/**
 * The request shapes of the certificate endpoints (§4.4, §5.2-§5.8): TypeBox schemas the HTTP layer validates and
 * documents, and, through Static<>, the input types of the certificate services. They live here, below both, so
 * routes and services import them downward.
 */
import { Type, type Static } from 'typebox';
import { HASH_ALGORITHMS, KEY_ALGORITHMS } from '../../x509/algorithms.ts';
import { MAX_CSR_LENGTH } from '../../x509/csr.ts';
import { PagingQuery, SortDirection, StringEnum, StoredProjectId, UUID_PATTERN } from '../../schemas/common.ts';
import { NameConstraintsIn } from '../policy/issuance-policy-schemas.ts';
import { CERTIFICATE_STATUSES } from './certificate-rules.ts';

export const CERTIFICATE_SORT_KEYS = ['create_time', 'common_name', 'issuer_name', 'not_after'] as const;
export type CertificateSortKey = (typeof CERTIFICATE_SORT_KEYS)[number];

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
const PathLength = Type.Integer({ minimum: 0, maximum: 6, description: "INTERMEDIATE_CA only; below the issuer's" });
const IssuerId = Type.String({ minLength: 1, maxLength: 256, description: 'CA id or URN' });

export const CreateCertificateBody = Type.Object({
  issuer_id: IssuerId,
  distinguished_name: CertDistinguishedName,
  validity: Validity,
  key_algorithm: Type.Optional(Type.String({ enum: [...KEY_ALGORITHMS], description: "Default: the issuer's" })),
  signature_algorithm: Type.Optional(Type.String({ enum: [...HASH_ALGORITHMS], description: "Default: the issuer's" })),
  key_usages: Type.Optional(Type.Array(Type.String(), { maxItems: 9 })),
  subject_alternative_names: Type.Optional(Type.Array(SubjectAlternativeName)),
  extended_key_usage: Type.Optional(ExtendedKeyUsage),
  customized_extension: Type.Optional(CustomizedExtension),
  enterprise_project_id: Type.Optional(StoredProjectId()),
  type: Type.Optional(CertificateType),
  path_length: Type.Optional(PathLength),
  name_constraints: Type.Optional(NameConstraintsIn),
});

export const CreateCertificateByCsrBody = Type.Object(
  {
    issuer_id: IssuerId,
    csr: Type.String({ minLength: 1, maxLength: MAX_CSR_LENGTH, description: 'PEM PKCS#10' }),
    validity: Validity,
    type: Type.Optional(CertificateType),
    path_length: Type.Optional(PathLength),
    enterprise_project_id: Type.Optional(StoredProjectId()),
    subject_alternative_names: Type.Optional(
      Type.Union([Type.Array(Type.Unknown()), Type.Null()], { description: 'Reserved by Huawei and ignored: the SANs come from the CSR' }),
    ),
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
    Type.Union([Type.String(), Type.Boolean()], {
      description:
        '"true" or true: the response is a zip (application/zip) laid out for `type`; otherwise JSON. "true"/"false" in any case',
    }),
  ),
  type: Type.Optional(
    Type.String({
      description: 'APACHE, NGINX, IIS, TOMCAT, OTHER or ISTIO (any case): the server the files are for',
      examples: ['NGINX'],
    }),
  ),
  password: Type.Optional(Type.String({ maxLength: 32 })),
  is_sm_standard: Type.Optional(Type.String()),
  include_private_key: Type.Optional(
    Type.Boolean({
      description:
        'Extension: false leaves the server-made private key out (the files of a certificate issued from a CSR): ' +
        'the certificate and its chain alone, no key export audited. Default true',
    }),
  ),
});

export const CertificateIdParams = Type.Object({ certificate_id: Type.String({ pattern: UUID_PATTERN }) });

export const ListQuery = Type.Object({
  ...PagingQuery,
  name: Type.Optional(Type.String({ maxLength: 64, description: 'Empty: no filter' })),
  issuer_id: Type.Optional(Type.String({ maxLength: 256, description: 'Extension: only the certificates this CA issued (its id or URN)' })),
  status: Type.Optional(StringEnum(CERTIFICATE_STATUSES)),
  sort_key: Type.Optional(StringEnum(CERTIFICATE_SORT_KEYS)),
  sort_dir: SortDirection,
});

export type CreateCertificateRequest = Static<typeof CreateCertificateBody>;
export type CreateCertificateByCsrRequest = Static<typeof CreateCertificateByCsrBody>;
export type ExportRequest = Static<typeof ExportBody>;
/** The list query once the route has filled in the page (pageOf). */
export type ListCertificatesQuery = Omit<Static<typeof ListQuery>, 'limit' | 'offset'> & { limit: number; offset: number };
