/** TypeBox schemas of the CA endpoints (§4.2, §4.3, §5.1-§5.7). Request schemas have no $ref. */
import { AcmePolicyOut } from './acme-admin-schemas.ts';
import { Type } from 'typebox';
import { ErrorCode } from '../../../errors.ts';
import { CA_STATUSES, CA_TYPES, VALIDITY_TYPES } from '../../../services/ca/ca-rules.ts';
import { HASH_ALGORITHMS, KEY_ALGORITHMS } from '../../../x509/algorithms.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { DistinguishedNameOut, MAX_OFFSET, NullableString, PagingQuery, SortDirection } from '../../../schemas/common.ts';
import { IssuancePolicyOut, NameConstraintsIn, NameConstraintsOut } from '../../../services/policy/issuance-policy-schemas.ts';

const NullableInteger = Type.Union([Type.Integer(), Type.Null()]);
const CaReference = Type.String({ minLength: 1, maxLength: 512, description: 'CA id or URN pca:{region}:{domain_id}:ca:{ca_id}' });

export const CaIdParams = Type.Object({ ca_id: CaReference });

const DistinguishedNameIn = Type.Object(
  {
    common_name: Type.String(),
    country: Type.String(),
    state: Type.String(),
    locality: Type.String(),
    organization: Type.String(),
    organizational_unit: Type.String(),
  },
  { description: 'Every attribute required (§5.1)' },
);

// Enums name exactly what the service's rules accept (the same constants), so generated clients offer no other value.
const KeyAlgorithm = (description?: string) => Type.String({ enum: [...KEY_ALGORITHMS], ...(description && { description }) });
const CaType = (description?: string) => Type.String({ enum: [...CA_TYPES], ...(description && { description }) });

const Validity = Type.Object({
  type: Type.String({ enum: [...VALIDITY_TYPES], description: 'MONTH is 31 days' }),
  value: Type.Integer({ minimum: 1 }),
  start_from: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'not_before in ms; default now' })),
});

const CrlConfigurationIn = Type.Object({
  enabled: Type.Boolean(),
  crl_name: Type.Optional(NullableString),
  obs_bucket_name: Type.Optional(NullableString),
  valid_days: Type.Optional(Type.Union([Type.Integer({ minimum: 7, maximum: 30 }), Type.Null()])),
});

const caFields = {
  signature_algorithm: Type.Optional(Type.String({ enum: [...HASH_ALGORITHMS], description: 'Hash of the CA certificate signature' })),
  validity: Type.Optional(Validity),
  issuer_id: Type.Optional(Type.String({ maxLength: 512, description: 'Parent CA id or URN' })),
  path_length: Type.Optional(Type.Integer({ minimum: 0, description: 'Subordinates: 0-6, below the issuer\'s; ignored for a ROOT, which reports 7' })),
  key_usages: Type.Optional(Type.Array(Type.String(), { maxItems: 9 })),
  crl_configuration: Type.Optional(CrlConfigurationIn),
  enterprise_project_id: Type.Optional(Type.String({ maxLength: 64 })),
  name_constraints: Type.Optional(NameConstraintsIn),
};

export const CreateCaBody = Type.Object(
  {
    type: CaType(),
    distinguished_name: DistinguishedNameIn,
    key_algorithm: KeyAlgorithm(),
    ...caFields,
    ca_id: Type.Optional(Type.String({ maxLength: 512, description: 'Configure this yearly/monthly CA (from CA/order)' })),
  },
  {
    examples: [
      {
        type: 'ROOT',
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        distinguished_name: { common_name: 'Example Root CA', country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'example', organizational_unit: 'pki' },
        validity: { type: 'YEAR', value: 10 },
        crl_configuration: { enabled: true, valid_days: 7 },
      },
    ],
  },
);

export const ActivateCaBody = Type.Object({
  type: Type.Optional(CaType('Required for an unconfigured yearly/monthly CA')),
  distinguished_name: Type.Optional(DistinguishedNameIn),
  key_algorithm: Type.Optional(KeyAlgorithm()),
  ...caFields,
});

const ProductInfo = Type.Object({
  cloud_service_type: Type.Literal('hws.service.type.ccm'),
  resource_type: Type.Literal('hws.resource.type.pca.duration'),
  resource_spec_code: Type.Literal('ca.duration'),
});

export const OrderBody = Type.Object({
  cloud_service_type: Type.Literal('hws.service.type.ccm'),
  charging_mode: Type.Literal(0),
  period_type: Type.Union([Type.Literal(2), Type.Literal(3)], { description: '2 month, 3 year' }),
  period_num: Type.Integer({ minimum: 1, maximum: 1200 }),
  is_auto_renew: Type.Union([Type.Literal(0), Type.Literal(1)]),
  subscription_num: Type.Integer({ minimum: 1 }),
  is_auto_pay: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)])),
  promotion_info: Type.Optional(Type.String({ maxLength: 256 })),
  enterprise_project_id: Type.Optional(Type.String({ maxLength: 64 })),
  product_infos: Type.Array(ProductInfo, { maxItems: 10 }),
});

export const OrderResponse = Type.Object({ order_id: Type.String(), ca_ids: Type.Array(Type.String()) });

export const ImportBody = Type.Object({
  certificate: Type.String({ minLength: 1, maxLength: 32768 }),
  certificate_chain: Type.Optional(Type.String({ maxLength: 2097152 })),
});

export const ListCaQuery = Type.Object({
  ...PagingQuery,
  name: Type.Optional(Type.String({ maxLength: 64, description: 'Empty: no filter' })),
  status: Type.Optional(Type.String({ enum: [...CA_STATUSES] })),
  type: Type.Optional(CaType()),
  sort_key: Type.Optional(
    Type.String({ enum: ['create_time', 'common_name', 'type', 'ca_type', 'not_after'], default: 'create_time', description: "type (Huawei's SDK models) or ca_type (older API pages): the CA type" }),
  ),
  sort_dir: SortDirection,
});

export const DeleteCaQuery = Type.Object({
  pending_days: Type.Optional(Type.Integer({ minimum: 7, maximum: 30, default: 7, description: 'Days until final removal' })),
});


/** The CA object (§5.1): one named component of the document, referenced by every route that returns it. */
export const CertificateAuthoritySchema = Type.Object({
  ca_id: Type.String(),
  type: Type.Union([CaType(), Type.Null()], { description: 'null for a yearly/monthly CA not configured yet' }),
  status: Type.String({ enum: [...CA_STATUSES] }),
  path_length: Type.Integer(),
  issuer_id: NullableString,
  issuer_name: NullableString,
  key_algorithm: NullableString,
  signature_algorithm: NullableString,
  freeze_flag: Type.Integer(),
  gen_mode: NullableString,
  serial_number: NullableString,
  create_time: Type.Integer(),
  delete_time: NullableInteger,
  not_before: NullableInteger,
  not_after: NullableInteger,
  distinguished_name: Type.Union([DistinguishedNameOut, Type.Null()]),
  crl_configuration: Type.Object({
    enabled: Type.Boolean(),
    crl_name: NullableString,
    obs_bucket_name: NullableString,
    valid_days: NullableInteger,
    crl_dis_point: NullableString,
  }),
  enterprise_project_id: Type.String(),
  free_quota: Type.Integer(),
  charging_mode: Type.Integer({ description: '0 yearly/monthly (prepaid), 1 pay-per-use' }),
  prepaid_expire_time: Type.Union([Type.Integer(), Type.Null()], { description: 'Extension: end of the purchased period of a prepaid CA (ms)' }),
  prepaid_days_left: Type.Union([Type.Integer(), Type.Null()], { description: 'Extension: whole days left of the purchased period; null for pay-per-use' }),
  prepaid_auto_renew: Type.Union([Type.Integer(), Type.Null()], { description: "Extension: 1 when the order asked for auto-renewal (renewed for the same period 7 days before prepaid_expire_time), 0 when not; null for pay-per-use" }),
  cluster_id: Type.Null(),
  domain_id: Type.String(),
  urn: Type.String(),
  name_constraints: NameConstraintsOut,
  issuance_policy: IssuancePolicyOut,
  acme_policy: AcmePolicyOut,
}, { $id: 'CertificateAuthority', title: 'CertificateAuthority', description: 'A private CA' });
export const CaObject = Type.Ref('CertificateAuthority');

export const CaIdResponse = Type.Object({ ca_id: Type.String() });
export const ListCaResponse = Type.Object({ total: Type.Integer(), certificate_authorities: Type.Array(CaObject) });
export const CsrResponse = Type.Object({ csr: Type.String() });
export const ExportCaResponse = Type.Object({ certificate: Type.String(), certificate_chain: Type.String() });
export const CaQuotaResponse = Type.Object({
  quotas: Type.Object({ resources: Type.Array(Type.Object({ type: Type.String(), used: Type.Integer(), quota: Type.Integer() })) }),
});

/** Schema violations under these fields get the contract's specific codes. */
export const caFieldErrors: FieldErrorCodes = {
  distinguished_name: ErrorCode.InvalidDistinguishedName,
  validity: ErrorCode.InvalidValidity,
  path_length: ErrorCode.InvalidPathLength,
  key_algorithm: ErrorCode.InvalidKeyAlgorithm,
  signature_algorithm: ErrorCode.InvalidSignatureAlgorithm,
  type: ErrorCode.InvalidCaType,
  issuer_id: ErrorCode.InvalidCaId,
  ca_id: ErrorCode.InvalidCaId,
};

// ---------------------------------------------------------------------------------------------------------------
// Tags and resource instances (§4.3), shared by CAs and certificates

export const ResourceTag = Type.Object({ key: Type.String(), value: Type.String() });
export const TagBody = Type.Object({ tag: Type.Object({ key: Type.String(), value: Type.String() }) });
export const TagsBody = Type.Object({
  tags: Type.Array(Type.Object({ key: Type.String(), value: Type.Optional(Type.String()) }), { maxItems: 20, description: '[] changes nothing' }),
});
export const TagsResponse = Type.Object({ tags: Type.Array(ResourceTag) });
export const DomainTagsResponse = Type.Object({
  tags: Type.Array(Type.Object({ key: Type.String(), values: Type.Array(Type.String()) })),
});
export const ResourceFilterBody = Type.Object({
  tags: Type.Optional(
    Type.Array(Type.Object({ key: Type.String(), values: Type.Union([Type.Array(Type.String()), Type.Null()], { description: '[] or null: any value' }) }), { maxItems: 20 }),
  ),
  limit: Type.Optional(Type.Integer({ description: '10, 20 or 50' })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OFFSET })),
  matches: Type.Optional(Type.Array(Type.Object({ key: Type.String({ description: 'resource_name' }), value: Type.String() }))),
});
export const CountResponse = Type.Object({ total_count: Type.Integer() });
