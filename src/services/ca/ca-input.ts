/**
 * The request shapes of the CA endpoints (§4.2, §5.1-§5.7): TypeBox schemas the HTTP layer validates and documents,
 * and, through Static<>, the input types of the CA service. They live below both, so imports point down.
 */
import { Type, type Static } from 'typebox';
import { EnterpriseProjectId, PagingQuery, SortDirection, StoredProjectId, StringEnum } from '../../schemas/common.ts';
import { HASH_ALGORITHMS, KEY_ALGORITHMS } from '../../x509/algorithms.ts';
import { NameConstraintsIn } from '../policy/issuance-policy-schemas.ts';
import { CA_STATUSES, CA_TYPES, VALIDITY_TYPES } from './ca-rules.ts';

const CA_SORT_KEYS = ['create_time', 'common_name', 'type', 'ca_type', 'not_after'] as const;

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
export const KeyAlgorithm = (description?: string) => Type.String({ enum: [...KEY_ALGORITHMS], ...(description && { description }) });
export const CaType = (description?: string) => StringEnum(CA_TYPES, { ...(description && { description }) });

const Validity = Type.Object({
  type: Type.String({ enum: [...VALIDITY_TYPES], description: 'MONTH is 31 days' }),
  value: Type.Integer({ minimum: 1 }),
  start_from: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'not_before in ms; default now' })),
});

/** One shape at CA creation and at CRL enable (§4.2.10): an empty name, as clients send an unset field, takes the default at both. */
export const CrlName = Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
  description: 'Default (absent, null or empty): the CA id',
});
export const ObsBucketName = Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
  description:
    'The bucket the CA publishes its CRL and certificate to, when the deployment publishes (CRL_PUBLISH_BUCKETS) and allows this one; else its first bucket. Empty: none (stored and echoed as null)',
});

const CrlConfigurationIn = Type.Object({
  enabled: Type.Boolean(),
  crl_name: Type.Optional(CrlName),
  obs_bucket_name: Type.Optional(ObsBucketName),
  valid_days: Type.Optional(Type.Union([Type.Integer({ minimum: 7, maximum: 30 }), Type.Null()])),
});

const caFields = {
  signature_algorithm: Type.Optional(Type.String({ enum: [...HASH_ALGORITHMS], description: 'Hash of the CA certificate signature' })),
  validity: Type.Optional(Validity),
  issuer_id: Type.Optional(Type.String({ maxLength: 512, description: 'Parent CA id or URN' })),
  path_length: Type.Optional(
    Type.Integer({ minimum: 0, description: "Subordinates: 0-6, below the issuer's; ignored for a ROOT, which reports 7" }),
  ),
  key_usages: Type.Optional(Type.Array(Type.String(), { maxItems: 9 })),
  crl_configuration: Type.Optional(CrlConfigurationIn),
  enterprise_project_id: Type.Optional(EnterpriseProjectId()),
  name_constraints: Type.Optional(NameConstraintsIn),
  hsm_cluster_info: Type.Optional(
    Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()], {
      description: "Huawei's dedicated-HSM feature (allow-list only): ignored",
    }),
  ),
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
        distinguished_name: {
          common_name: 'Example Root CA',
          country: 'CN',
          state: 'zhejiang',
          locality: 'hangzhou',
          organization: 'example',
          organizational_unit: 'pki',
        },
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
  enterprise_project_id: Type.Optional(StoredProjectId()),
  product_infos: Type.Array(ProductInfo, { maxItems: 10 }),
});

export const ImportBody = Type.Object({
  certificate: Type.String({ minLength: 1, maxLength: 32768 }),
  certificate_chain: Type.Optional(Type.String({ maxLength: 2097152 })),
});

export const ListCaQuery = Type.Object({
  ...PagingQuery,
  name: Type.Optional(Type.String({ maxLength: 64, description: 'Empty: no filter' })),
  status: Type.Optional(StringEnum(CA_STATUSES)),
  type: Type.Optional(CaType()),
  sort_key: Type.Optional(
    StringEnum(CA_SORT_KEYS, {
      default: 'create_time',
      description: "type (Huawei's SDK models) or ca_type (older API pages): the CA type",
    }),
  ),
  sort_dir: SortDirection,
});

export const DeleteCaQuery = Type.Object({
  pending_days: Type.Optional(Type.Integer({ minimum: 7, maximum: 30, default: 7, description: 'Days until final removal' })),
});

export type CreateCaInput = Static<typeof CreateCaBody>;
export type CrlConfigurationInput = NonNullable<CreateCaInput['crl_configuration']>;
export type ActivateCaInput = Static<typeof ActivateCaBody>;
/**
 * What a CA spec is built from: a create or activate body, or for a configured PENDING CA its stored fields merged
 * with the body. specOf checks every field itself, so the stored ones (DN, name constraints, type) stay loose here.
 */
export type CaSpecInput = Omit<ActivateCaInput, 'type' | 'key_algorithm' | 'distinguished_name' | 'name_constraints' | 'path_length'> & {
  type?: string;
  key_algorithm?: string;
  distinguished_name?: unknown;
  name_constraints?: unknown;
  path_length?: number | null;
};
export type OrderCaInput = Static<typeof OrderBody>;
export type ImportCaInput = Static<typeof ImportBody>;
/** The list query once the validator's defaults and the route's page are filled in. */
export type ListCaQuery = Omit<Static<typeof ListCaQuery>, 'limit' | 'offset' | 'sort_key' | 'sort_dir'> & {
  limit: number;
  offset: number;
  sort_key: (typeof CA_SORT_KEYS)[number];
  sort_dir: 'ASC' | 'DESC';
};
