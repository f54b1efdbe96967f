/**
 * The issuing path's statements on idempotency keys and the certificate quota, as values: the service runs them
 * (through the prepared-statement path on the group-committed batch) and tests EXPLAIN the very same statements.
 */
import type { BulkTable, InsertGuard } from '../../db/bulk-insert.ts';
import type { SqlStatement } from '../../db/database.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { existingCaCondition } from '../ca/ca-sql.ts';

/** The row of one key ($1 domain, $2 endpoint, $3 key), by primary key. */
export const LOOK_UP_IDEMPOTENCY_KEY: SqlStatement = {
  name: 'look-up-idempotency-key',
  text: `SELECT request_hash, certificate_id::text AS certificate_id, created_at FROM idempotency_keys
          WHERE domain_id = $1 AND endpoint = $2 AND key = $3`,
};

/**
 * Claims the keys of $1 (JSON rows) in key order, so that two statements claiming overlapping keys lock them in the
 * same order, taking over rows created at or before $2 (the window's start); returns the certificate ids of the
 * claims made.
 */
export const CLAIM_IDEMPOTENCY_KEYS: SqlStatement = {
  name: 'claim-idempotency-keys',
  text: `INSERT INTO idempotency_keys (domain_id, endpoint, key, request_hash, certificate_id, created_at)
         SELECT domain_id, endpoint, key, request_hash, certificate_id, created_at
           FROM json_populate_recordset(NULL::idempotency_keys, $1::json)
          ORDER BY domain_id, endpoint, key
         ON CONFLICT (domain_id, endpoint, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, certificate_id = EXCLUDED.certificate_id, created_at = EXCLUDED.created_at
           WHERE idempotency_keys.created_at <= $2::timestamptz
         RETURNING certificate_id::text AS certificate_id`,
};

/**
 * Deletes the keys of $1 (JSON rows of domain_id, endpoint, key), each found by primary key. A join of the rows with
 * the table (estimated at 100 rows) is planned as a sequential scan of it once it holds some thousands of keys; the
 * LIMIT keeps each look-up a probe of its own. The rows are this transaction's claims, locked by it, so their ctid
 * holds until the delete.
 */
export const RELEASE_IDEMPOTENCY_KEYS: SqlStatement = {
  name: 'release-idempotency-keys',
  text: `DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
           SELECT found.ctid FROM json_populate_recordset(NULL::idempotency_keys, $1::json) r,
             LATERAL (SELECT ctid FROM idempotency_keys k
                       WHERE k.domain_id = r.domain_id AND k.endpoint = r.endpoint AND k.key = r.key LIMIT 1) found))`,
};

/** Counts $2 more certificates of domain $1 unless that would exceed the quota $3 (then no row). */
export const TAKE_CERTIFICATE_QUOTA: SqlStatement = {
  name: 'take-certificate-quota',
  text: `INSERT INTO domain_certificate_usage (domain_id, used)
         SELECT $1, $2::int WHERE $2::int <= $3::int
         ON CONFLICT (domain_id) DO UPDATE SET used = domain_certificate_usage.used + EXCLUDED.used
         WHERE domain_certificate_usage.used + EXCLUDED.used <= $3::int
         RETURNING used`,
};

/** Counts $2 certificates of domain $1 no longer. */
export const RELEASE_CERTIFICATE_QUOTA: SqlStatement = {
  name: 'release-certificate-quota',
  text: `UPDATE domain_certificate_usage SET used = used - $2::int WHERE domain_id = $1`,
};

/** The domain's `used` ($1); no row is none used. */
export const CERTIFICATES_USED: SqlStatement = {
  name: 'certificates-used',
  text: 'SELECT used FROM domain_certificate_usage WHERE domain_id = $1',
};

/**
 * The CA rows, of any tenant, that hold the key of one of the SubjectPublicKeyInfos in `keys` (a placeholder: a JSON
 * array of their DER in hex): key_ref set, a key this service signs with. Each key is one probe of the hash index on
 * public_key_spki. A CSR-issued CA's row has no key_ref: its key is the requester's, certified again as any key may be.
 */
const heldCaKeysAmong = (keys: string) =>
  `certificate_authorities held WHERE held.key_ref IS NOT NULL
     AND held.public_key_spki = ANY (ARRAY(SELECT decode(k, 'hex') FROM json_array_elements_text(${keys}::json) k))`;

/** Those of the keys of $1 (as `heldCaKeysAmong`) that are held CA keys, in hex. */
export const HELD_CA_KEYS: SqlStatement = {
  name: 'held-ca-keys',
  text: `SELECT DISTINCT encode(held.public_key_spki, 'hex') AS spki FROM ${heldCaKeysAmong('$1')}`,
};

/**
 * The guard of a batch signed against remembered issuer rows (issuance-batch.ts), run in the statement that stores
 * it: the issuers of $1 (a JSON object of id: version) locked FOR SHARE where each still has that version (xmin: the
 * row has not changed since it was read) and exists at $2 (now; $3 = releasedBefore(now)), each read by primary key
 * (not by a join, which the planner may make a scan of the table). Only if all $4 do, and no key of $9 (the CSRs'
 * keys, as `heldCaKeysAmong`) is a held CA key (the transaction path refuses those requests): the Idempotency-Keys of
 * $7 are claimed as CLAIM_IDEMPOTENCY_KEYS does (in key order; window start $8), and those another request holds (a
 * replay, or a concurrent request of another process) are `held`: their requests are neither stored nor counted. Then
 * each domain of $5 (JSON rows of domain_id and count) takes its count less its held requests, as
 * TAKE_CERTIFICATE_QUOTA does (quota $6). Keys before the quota row, as on the transaction path: a statement waiting
 * for a key another issuance holds then holds no quota row that issuance may be waiting for (the opposite order
 * deadlocked until Postgres broke it, a second later). Only the granted domains' rows that are not held are inserted.
 */
const REMEMBERED_ISSUERS_GUARD = `
  issuers AS (
    SELECT ca.id FROM certificate_authorities ca
     WHERE ca.id = ANY (ARRAY(SELECT json_object_keys($1::json)::uuid)) AND ca.xmin = ($1::json ->> ca.id::text)::xid
       AND ${existingCaCondition('ca.', '$2', '$3')}
     ORDER BY ca.id FOR SHARE OF ca),
  storable AS (
    SELECT 1 WHERE (SELECT count(*) FROM issuers) = $4::int AND NOT EXISTS (SELECT 1 FROM ${heldCaKeysAmong('$9')})),
  keys AS (
    SELECT * FROM json_populate_recordset(NULL::idempotency_keys, $7::json) k WHERE EXISTS (SELECT 1 FROM storable)),
  claimed AS (
    INSERT INTO idempotency_keys (domain_id, endpoint, key, request_hash, certificate_id, created_at)
    SELECT domain_id, endpoint, key, request_hash, certificate_id, created_at FROM keys ORDER BY domain_id, endpoint, key
    ON CONFLICT (domain_id, endpoint, key) DO UPDATE
      SET request_hash = EXCLUDED.request_hash, certificate_id = EXCLUDED.certificate_id, created_at = EXCLUDED.created_at
      WHERE idempotency_keys.created_at <= $8::timestamptz
    RETURNING domain_id, certificate_id),
  held AS (
    SELECT domain_id, certificate_id::text AS id FROM keys WHERE certificate_id NOT IN (SELECT certificate_id FROM claimed)),
  granted AS (
    INSERT INTO domain_certificate_usage (domain_id, used)
    SELECT fresh.domain_id, fresh.count FROM (
      SELECT wanted.domain_id, wanted.count - (SELECT count(*) FROM held WHERE held.domain_id = wanted.domain_id)::int AS count
        FROM json_to_recordset($5::json) AS wanted(domain_id text, count int)) fresh
     WHERE fresh.count <= $6::int AND EXISTS (SELECT 1 FROM storable)
    ON CONFLICT (domain_id) DO UPDATE SET used = domain_certificate_usage.used + EXCLUDED.used
     WHERE domain_certificate_usage.used + EXCLUDED.used <= $6::int
    RETURNING domain_id)`;

/**
 * '0' when every key claimed stands, its domain granted; otherwise the failing cast, so that nothing of the statement
 * is stored (a key must not stand without its certificate) and the transaction path answers.
 */
const CLAIMS_STAND = `(CASE WHEN NOT EXISTS (SELECT 1 FROM claimed WHERE claimed.domain_id NOT IN (SELECT domain_id FROM granted))
                            THEN '0' ELSE 'a domain with an Idempotency-Key claimed in the batch is short of quota' END)::int`;

/** The id of a table's row that names the certificate, as text. */
const CERTIFICATE_ID_OF: Record<BulkTable, string> = {
  certificates: 'r.id::text',
  audit_events: 'r.resource_id',
  billing_records: 'r.resource_id::text',
};

export interface RememberedIssuersCheck {
  /** Each issuer's id and the version (xmin) signed against. */
  issuers: ReadonlyMap<string, string>;
  now: Date;
  /** Certificates per domain. */
  domains: Map<string, number>;
  quota: number;
  /** The batch's Idempotency-Key claims (`claimRows`) and the window's start. */
  claims: string;
  windowStart: Date;
  /** The keys of the batch's CSRs, as `heldCaKeysAmong` takes them (`keysAsJson`). */
  csrKeys: string;
}

/** SubjectPublicKeyInfos as the statements here take them: a JSON array of their DER in hex. */
export function keysAsJson(spkis: readonly Uint8Array[]): string {
  return JSON.stringify(spkis.map(spkiHex));
}

export function spkiHex(spki: Uint8Array): string {
  return Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('hex');
}

export function rememberedIssuersGuard(check: RememberedIssuersCheck): InsertGuard {
  return {
    with: REMEMBERED_ISSUERS_GUARD,
    values: [
      JSON.stringify(Object.fromEntries(check.issuers)),
      check.now,
      releasedBefore(check.now),
      check.issuers.size,
      JSON.stringify([...check.domains].map(([domain_id, count]) => ({ domain_id, count }))),
      check.quota,
      check.claims,
      check.windowStart,
      check.csrKeys,
    ],
    rowCondition: (table) => `r.domain_id IN (SELECT domain_id FROM granted) AND ${CERTIFICATE_ID_OF[table]} NOT IN (SELECT id FROM held)`,
    // The check is a branch of its own so that it is made even when no domain was granted.
    returning: `SELECT domain_id, NULL AS held FROM granted UNION ALL SELECT NULL, id FROM held
                UNION ALL SELECT NULL, NULL WHERE ${CLAIMS_STAND} <> 0`,
  };
}
