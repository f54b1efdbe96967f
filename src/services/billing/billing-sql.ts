/** Billing's raw statements (the hooks' on the issuing path, settlement's and renewal's), as values (tests EXPLAIN them). */
import type { SqlStatement } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import { releasedBefore } from './prepaid.ts';
import { CHARGING_MODE } from './billing-codes.ts';

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

/**
 * Counts $3 more issuances of domain $1 in the UTC month starting $2; returns how many came before them. The row
 * stays locked until commit, so a domain's issuances take their places in the month one after another.
 */
export const ADD_MONTHLY_ISSUES: SqlStatement = {
  name: 'add-monthly-issues',
  text: `UPDATE domain_monthly_issues SET issued = issued + $3::int WHERE domain_id = $1 AND month = $2::timestamptz
          RETURNING issued - $3::int AS before`,
};

/** Creates domain $1's row for the month starting $2 if absent, and locks it until commit. */
export const LOCK_MONTHLY_ISSUES: SqlStatement = {
  name: 'lock-monthly-issues',
  text: `INSERT INTO domain_monthly_issues (domain_id, month, issued) VALUES ($1, $2::timestamptz, 0)
          ON CONFLICT (domain_id, month) DO UPDATE SET issued = domain_monthly_issues.issued RETURNING issued`,
};

/**
 * Sets the locked row (LOCK_MONTHLY_ISSUES, a statement earlier: this one's snapshot then holds every issuance priced
 * before the lock) to the records of the month [$2, $4) plus $3, returning how many came before those $3. The month's
 * end comes from the caller: `timestamptz + interval '1 month'` is reckoned in the session's time zone, which would
 * end a UTC month early (a day in New York's March).
 */
export const RECOUNT_MONTHLY_ISSUES: SqlStatement = {
  name: 'recount-monthly-issues',
  text: `UPDATE domain_monthly_issues SET issued = $3::int + (
            SELECT count(*)::int FROM billing_records
            WHERE domain_id = $1 AND usage_type = 'CERT_ISSUE'
              AND usage_start >= $2::timestamptz AND usage_start < $4::timestamptz)
          WHERE domain_id = $1 AND month = $2::timestamptz
          RETURNING issued - $3::int AS before`,
};

/**
 * The CAs with hours before `settledUntil` still to settle, each from its watermark or its first stretch.
 * Stretches live only for pay-per-use CAs (the hooks ignore prepaid ones). A CA whose stretches all ended
 * before its watermark has nothing left to settle, ever.
 */
export function caUsageBehindSql(settledUntil: Date): Prisma.Sql {
  return Prisma.sql`
      SELECT p.ca_id::text AS ca_id, min(p.domain_id) AS domain_id, coalesce(s.settled_until, min(p.start_at)) AS "from"
      FROM ca_usage_periods p LEFT JOIN ca_settlements s ON s.ca_id = p.ca_id
      WHERE p.start_at < ${settledUntil}
        AND (s.settled_until IS NULL
             OR (s.settled_until < ${settledUntil}
                 AND (p.end_at IS NULL OR p.end_at > s.settled_until OR p.restored_at >= s.settled_until)))
      GROUP BY p.ca_id, s.settled_until`;
}

/**
 * Claims up to `batch` auto-renewing prepaid CAs whose paid period ends by `horizon` and that are not yet released,
 * locked FOR UPDATE SKIP LOCKED so that overlapping runs split them.
 */
export function claimDueRenewalsSql(now: Date, horizon: Date, batch: number): Prisma.Sql {
  return Prisma.sql`
            SELECT ca.id::text AS id, ca.domain_id, ca.prepaid_until, o.created_at AS ordered_at, o.period_type, o.period_num
            FROM certificate_authorities ca JOIN ca_orders o ON o.id = ca.order_id
            WHERE ca.charging_mode = ${CHARGING_MODE.PREPAID} AND o.is_auto_renew = 1 AND ca.removed_at IS NULL
              AND ca.status <> 'DELETED' AND (ca.not_after IS NULL OR ca.not_after > ${now})
              AND ca.prepaid_until <= ${horizon} AND ca.prepaid_until > ${releasedBefore(now)}
            ORDER BY ca.prepaid_until LIMIT ${batch} FOR UPDATE OF ca SKIP LOCKED`;
}
