/**
 * Schemas of issue #19: RFC 5280 name constraints (`name_constraints` of CA create/activate and of §10.9
 * intermediates, and on the CA object) and the issuance policy document. Syntax of each entry is checked by the
 * services (src/x509/name-constraints.ts, src/services/policy/), which name the offending entry.
 */
import { Type } from 'typebox';

const MAX_ENTRIES = 100;

const entries = (description: string) =>
  Type.Optional(Type.Union([Type.Array(Type.String({ maxLength: 512 }), { maxItems: MAX_ENTRIES, description }), Type.Null()]));

/** Subtrees or patterns by name type; absent types constrain nothing (subtrees) or allow nothing (allowed). */
const namesIn = (what: { dns: string; ip: string; uri: string; email: string }) =>
  Type.Object(
    { dns: entries(what.dns), ip: entries(what.ip), uri: entries(what.uri), email: entries(what.email) },
    { additionalProperties: false },
  );

const SUBTREES = {
  dns: 'Domains: example.com (it and below) or .example.com (strictly below); IDNs are converted to A-labels',
  ip: 'Networks in CIDR form, e.g. 10.0.0.0/8',
  uri: 'Hosts of URIs (RFC 5280): cluster.local (exactly) or .example.com (strictly below)',
  email: 'Mailboxes, hosts (every mailbox at it) or .domain',
};

const PATTERNS = {
  dns: "Host names or '*.domain' (one or more labels left of domain, not domain itself)",
  ip: 'Addresses or CIDR ranges (IPv4 and IPv6 never match each other)',
  uri: "'scheme://host[:port][/path]': host may be '*.domain', a path ending in '/*' matches any non-empty rest; or a URI without authority, matched exactly",
  email: "'mailbox@host', '*@host' or '*@*.domain'",
};

export const NameConstraintsIn = Type.Union(
  [
    Type.Object(
      {
        permitted: Type.Optional(Type.Union([namesIn(SUBTREES), Type.Null()])),
        excluded: Type.Optional(Type.Union([namesIn(SUBTREES), Type.Null()])),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'RFC 5280 §4.2.1.10 name constraints, written critical. Under a constrained parent they may only narrow its subtrees.' },
);

const namesOut = Type.Object({
  dns: Type.Array(Type.String()),
  ip: Type.Array(Type.String()),
  uri: Type.Array(Type.String()),
  email: Type.Array(Type.String()),
});

export const NameConstraintsOut = Type.Union([Type.Object({ permitted: namesOut, excluded: namesOut }), Type.Null()], {
  description: 'Extension: name constraints of the CA certificate (requested ones while PENDING); null when none',
});

export const IssuancePolicyBody = Type.Object(
  {
    allowed: Type.Optional(
      Type.Union([namesIn(PATTERNS), Type.Null()], {
        description: 'Only these names may be signed (all types: a type without entries allows none). Absent: every name not denied.',
      }),
    ),
    denied: Type.Optional(Type.Union([namesIn(PATTERNS), Type.Null()], { description: 'Never signed; deny wins over allow' })),
    max_validity_days: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: '1-7305' })),
    key_algorithms: Type.Optional(
      Type.Union([Type.Array(Type.String(), { maxItems: 6 }), Type.Null()], {
        description: 'Keys of signed certificates, e.g. EC256, RSA2048',
      }),
    ),
    allowed_ekus: Type.Optional(
      Type.Union([Type.Array(Type.String(), { maxItems: 32 }), Type.Null()], {
        description:
          'serverAuth, clientAuth, codeSigning, emailProtection, timeStamping, OCSPSigning, smartCardLogon or dotted OIDs. Lists the only EKUs allowed, and is the only grant for CSR EKUs beyond the contract flags (timeStamping, OCSPSigning, other OIDs). anyExtendedKeyUsage is never granted.',
      }),
    ),
    require_name_constraints_for_cas: Type.Optional(
      Type.Union([Type.Boolean(), Type.Null()], {
        description:
          "CAs this CA signs must carry name constraints within allowed, reaching no denied name, on every name type the policy limits (permit only '.invalid', or for IP exclude 0.0.0.0/0 and ::/0, to allow none of a type)",
      }),
    ),
  },
  { additionalProperties: false, description: "A CA's issuance policy; {} removes it" },
);

export const IssuancePolicyDocument = Type.Object({
  allowed: Type.Union([namesOut, Type.Null()]),
  denied: Type.Union([namesOut, Type.Null()]),
  max_validity_days: Type.Union([Type.Integer(), Type.Null()]),
  key_algorithms: Type.Union([Type.Array(Type.String()), Type.Null()]),
  allowed_ekus: Type.Union([Type.Array(Type.String()), Type.Null()]),
  require_name_constraints_for_cas: Type.Boolean(),
});

export const IssuancePolicyOut = Type.Union([IssuancePolicyDocument, Type.Null()], {
  description: 'Extension: what this CA may sign (GET/PUT …/{ca_id}/issuance-policy); null when it has no policy',
});
