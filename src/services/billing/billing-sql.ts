/** The billing hooks' statements on the issuing path, as values (tests EXPLAIN them). */
import type { SqlStatement } from '../../db/database.ts';

/** Uses one of CA $1's free issues if it has one left (then one row). */
export const USE_ONE_FREE_ISSUE: SqlStatement = {
  name: 'use-one-free-issue',
  text: `UPDATE certificate_authorities SET free_quota = free_quota - 1 WHERE id = $1::uuid AND free_quota > 0 RETURNING id`,
};

/** Uses $2 of CA $1's free issues (the caller read free_quota under the row's lock). */
export const USE_FREE_ISSUES: SqlStatement = {
  name: 'use-free-issues',
  text: `UPDATE certificate_authorities SET free_quota = free_quota - $2::int WHERE id = $1::uuid`,
};

/** Domain $1's CERT_ISSUE records since $2 (the start of the month). */
export const COUNT_ISSUED_SINCE: SqlStatement = {
  name: 'count-issued-since',
  text: `SELECT count(*)::int AS issued FROM billing_records
          WHERE domain_id = $1 AND usage_type = 'CERT_ISSUE' AND usage_start >= $2::timestamptz`,
};
