/**
 * TypeBox schemas of the CA endpoints' responses and of tags (§4.2, §4.3, §5.1-§5.7); the CA request shapes are the
 * service's (services/ca/ca-input.ts). Request schemas have no $ref.
 */
import { Type } from 'typebox';
import { ErrorCode } from '../../../errors.ts';
import { DistinguishedNameOut, MAX_OFFSET, NullableString } from '../../../schemas/common.ts';
import { CaIdParams, CaType } from '../../../services/ca/ca-input.ts';
import { CA_STATUSES } from '../../../services/ca/ca-rules.ts';
import { IssuancePolicyOut, NameConstraintsOut } from '../../../services/policy/issuance-policy-schemas.ts';
import type { FieldErrorCodes } from '../../error-handler.ts';
import { AcmePolicyOut } from './acme-admin-schemas.ts';

const NullableInteger = Type.Union([Type.Integer(), Type.Null()]);
export const OrderResponse = Type.Object({ order_id: Type.String(), ca_ids: Type.Array(Type.String()) });

/** The CA object (§5.1): one named component of the document, referenced by every route that returns it. */
export const CertificateAuthoritySchema = Type.Object(
  {
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
    prepaid_expire_time: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Extension: end of the purchased period of a prepaid CA (ms)',
    }),
    prepaid_days_left: Type.Union([Type.Integer(), Type.Null()], {
      description: 'Extension: whole days left of the purchased period; null for pay-per-use',
    }),
    prepaid_auto_renew: Type.Union([Type.Integer(), Type.Null()], {
      description:
        'Extension: 1 when the order asked for auto-renewal (renewed for the same period 7 days before prepaid_expire_time), 0 when not; null for pay-per-use',
    }),
    cluster_id: Type.Null(),
    domain_id: Type.String(),
    urn: Type.String(),
    name_constraints: NameConstraintsOut,
    issuance_policy: IssuancePolicyOut,
    acme_policy: AcmePolicyOut,
  },
  { $id: 'CertificateAuthority', title: 'CertificateAuthority', description: 'A private CA' },
);
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

/** The path of every route under one CA, with the contract's code for a bad ca_id. */
export const byCaId = { params: CaIdParams, fieldErrorCodes: { ca_id: caFieldErrors.ca_id } };

// ---------------------------------------------------------------------------------------------------------------
// Tags and resource instances (§4.3), shared by CAs and certificates

export const ResourceTag = Type.Object({ key: Type.String(), value: Type.String() });
export const TagBody = Type.Object({ tag: Type.Object({ key: Type.String(), value: Type.String() }) });
/** Batch create: every tag has its value (the service refuses one without). */
export const TagsBody = Type.Object({
  tags: Type.Array(Type.Object({ key: Type.String(), value: Type.String() }), { maxItems: 20, description: '[] changes nothing' }),
});
/** Batch delete: by key; a value may be sent (Huawei SDKs do) and is not compared. */
export const TagsToDeleteBody = Type.Object({
  tags: Type.Array(Type.Object({ key: Type.String(), value: Type.Optional(Type.String()) }), {
    maxItems: 20,
    description: '[] changes nothing',
  }),
});
export const TagsResponse = Type.Object({ tags: Type.Array(ResourceTag) });
export const DomainTagsResponse = Type.Object({
  tags: Type.Array(Type.Object({ key: Type.String(), values: Type.Array(Type.String()) })),
});
/**
 * Huawei's bound on a match value. Each is searched for in every row's name: a megabyte of it held the database (or
 * PGlite's thread, the event loop's) for seconds; a common name (at most 64 characters) never contains a longer one.
 */
const MAX_MATCH_VALUE_LENGTH = 255;

export const ResourceFilterBody = Type.Object({
  tags: Type.Optional(
    Type.Array(
      Type.Object({
        key: Type.String(),
        values: Type.Union([Type.Array(Type.String()), Type.Null()], { description: '[] or null: any value' }),
      }),
      { maxItems: 20 },
    ),
  ),
  limit: Type.Optional(Type.Integer({ description: '10, 20 or 50' })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_OFFSET })),
  matches: Type.Optional(
    Type.Array(
      Type.Object({ key: Type.String({ description: 'resource_name' }), value: Type.String({ maxLength: MAX_MATCH_VALUE_LENGTH }) }),
    ),
  ),
});
export const CountResponse = Type.Object({ total_count: Type.Integer() });
