/** The CA store's raw statements, as values (tests EXPLAIN them). */
import type { SqlStatement } from '../../db/database.ts';

/** One CA row by id ($1), whatever its state: a chain's parent. */
export const CA_BY_ID: SqlStatement = { name: 'ca-by-id', text: 'SELECT * FROM certificate_authorities WHERE id = $1::uuid' };

/**
 * The existing CAs among $1 (uuids as a Postgres array literal), read and locked FOR SHARE in one statement, in id
 * order. The conditions are `existingCa`'s ($2 = now, $3 = releasedBefore(now)).
 */
export const LOCK_EXISTING_CAS_FOR_SHARE: SqlStatement = {
  name: 'lock-existing-cas-for-share',
  text: `SELECT * FROM certificate_authorities
          WHERE id = ANY($1::text::uuid[]) AND removed_at IS NULL
            AND (delete_time IS NULL OR delete_time > $2::timestamptz)
            AND (prepaid_until IS NULL OR prepaid_until > $3::timestamptz)
          ORDER BY id FOR SHARE`,
};
