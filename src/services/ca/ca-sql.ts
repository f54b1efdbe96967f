/** The CA store's and CA jobs' raw statements, as values (tests EXPLAIN them). */
import type { SqlStatement } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import type { RowLockMode } from '../../db/locks.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { CHARGING_MODE } from '../billing/billing-codes.ts';

/** One CA row by id ($1), whatever its state: a chain's parent. */
export const CA_BY_ID: SqlStatement = { name: 'ca-by-id', text: 'SELECT * FROM certificate_authorities WHERE id = $1::uuid' };

/**
 * `existingCa(now)` (ca-rules.ts) in SQL, over the CA columns prefixed `alias`: not removed, not past its
 * delete_time, not past a prepaid CA's retention; `now` and `releasedBefore` are the statement's placeholders.
 */
export const existingCaCondition = (alias: string, now: string, releasedBefore: string) =>
  `${alias}removed_at IS NULL AND (${alias}delete_time IS NULL OR ${alias}delete_time > ${now}::timestamptz)
            AND (${alias}prepaid_until IS NULL OR ${alias}prepaid_until > ${releasedBefore}::timestamptz)`;

/** The caller's CA $1 in domain $2, if it still exists ($3 = now, $4 = releasedBefore(now)): `findOwnCa`. */
export const OWN_EXISTING_CA: SqlStatement = {
  name: 'own-existing-ca',
  text: `SELECT * FROM certificate_authorities WHERE id = $1::uuid AND domain_id = $2 AND ${existingCaCondition('', '$3', '$4')}`,
};

/**
 * OWN_EXISTING_CA locked and read in one statement, which returns the row as its lock found it. Only the caller's
 * row is locked: another domain's CA, whose id is public (in its certificates' URLs), must answer 404 at once, not
 * wait behind (or hold up) its owner's issuances and CRL signing.
 */
export const LOCK_OWN_EXISTING_CA: Record<RowLockMode, SqlStatement> = {
  update: { name: 'own-existing-ca-for-update', text: `${OWN_EXISTING_CA.text} FOR UPDATE` },
  share: { name: 'own-existing-ca-for-share', text: `${OWN_EXISTING_CA.text} FOR SHARE` },
};

/**
 * The existing CAs among $1 (uuids as a Postgres array literal) of the domains $4, read and locked FOR SHARE in one
 * statement, in id order ($2 = now, $3 = releasedBefore(now)); each with its row version (xmin: every update makes a
 * new one). A CA is locked only for a batch with requests of its own domain, which need it: naming another domain's
 * CA must not make a request, and the batch it shares, wait behind that CA's owner (LOCK_OWN_EXISTING_CA).
 */
export const LOCK_EXISTING_CAS_FOR_SHARE: SqlStatement = {
  name: 'lock-existing-cas-for-share',
  text: `SELECT *, xmin::text AS row_version FROM certificate_authorities
          WHERE id = ANY($1::text::uuid[]) AND domain_id = ANY($4::text[]) AND ${existingCaCondition('', '$2', '$3')}
          ORDER BY id FOR SHARE`,
};

/**
 * Claims up to `batch` CAs to remove (deleted past their delete_time, or prepaid past retention), FOR UPDATE SKIP
 * LOCKED so that overlapping runs split them.
 */
export function claimRemovableCasSql(now: Date, batch: number): Prisma.Sql {
  return Prisma.sql`
            SELECT id::text AS id FROM certificate_authorities
            WHERE removed_at IS NULL AND ((status = 'DELETED' AND delete_time <= ${now})
              OR (charging_mode = ${CHARGING_MODE.PREPAID} AND prepaid_until <= ${releasedBefore(now)}))
            ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED`;
}

/**
 * Stores EXPIRED for up to `batch` live ACTIVED/DISABLED CAs past not_after (one a transition holds is left for the
 * next batch or run); returns each one's id and domain.
 */
export function expireCasSql(now: Date, batch: number): Prisma.Sql {
  return Prisma.sql`
          UPDATE certificate_authorities SET status = 'EXPIRED', updated_at = ${now}
          WHERE id IN (SELECT id FROM certificate_authorities
                        WHERE status IN ('ACTIVED', 'DISABLED') AND not_after <= ${now} AND removed_at IS NULL
                        ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED)
          RETURNING id::text AS id, domain_id`;
}

/**
 * The pending key `keyRef`, if recorded before `before`, locked FOR UPDATE (SKIP LOCKED: a creation committing it
 * holds it), and whether a CA row references the key.
 */
export function lockPendingCaKeySql(keyRef: string, before: Date): Prisma.Sql {
  return Prisma.sql`
          SELECT p.key_store, EXISTS (SELECT 1 FROM certificate_authorities ca WHERE ca.key_ref = p.key_ref) AS referenced
          FROM pending_ca_keys p WHERE p.key_ref = ${keyRef} AND p.created_at < ${before}
          FOR UPDATE OF p SKIP LOCKED`;
}
