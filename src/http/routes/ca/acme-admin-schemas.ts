/** Schemas of the REST side of ACME (issue #16): the ACME policy and External Account Binding keys. */
import { Type } from 'typebox';

export const AcmePolicyBody = Type.Object(
  {
    enabled: Type.Boolean({ description: 'Serve the ACME directory of this CA; EAB keys can be created only while true' }),
    allowed_identifiers: Type.Optional(
      Type.Union([Type.Array(Type.String({ maxLength: 512 }), { maxItems: 100 }), Type.Null()], {
        description:
          "Identifiers ACME may order: host names, '*.domain' (one or more labels), IP addresses or CIDR ranges. Absent: any the CA's own rules allow.",
      }),
    ),
    max_validity_days: Type.Optional(
      Type.Union([Type.Integer(), Type.Null()], { description: '1-7305; ACME certificates are valid this long (90 days when unset)' }),
    ),
  },
  { additionalProperties: false, description: "A CA's ACME policy" },
);

const policyFields = {
  enabled: Type.Boolean(),
  allowed_identifiers: Type.Union([Type.Array(Type.String()), Type.Null()]),
  max_validity_days: Type.Union([Type.Integer(), Type.Null()]),
};

export const AcmePolicyDocument = Type.Object(policyFields);

export const AcmePolicyOut = Type.Object(policyFields, {
  description: "Extension: the CA's ACME policy (GET/PUT …/{ca_id}/acme-policy); off unless enabled",
});

const eabFields = {
  kid: Type.String({ description: 'The EAB key identifier (certbot --eab-kid, lego --kid, cert-manager keyID)' }),
  ca_id: Type.String(),
  directory_url: Type.String({ description: "The CA's ACME directory" }),
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('REVOKED')]),
  create_time: Type.Integer(),
  revoke_time: Type.Union([Type.Integer(), Type.Null()]),
};

export const EabKey = Type.Object(eabFields);
export const CreatedEabKey = Type.Object({
  ...eabFields,
  hmac_key: Type.String({ description: 'base64url HMAC key, shown only in this answer' }),
});
export const EabKeyList = Type.Object({ eab_keys: Type.Array(EabKey) });
export const EabKidParams = Type.Object({ ca_id: Type.String(), kid: Type.String({ maxLength: 64 }) });
