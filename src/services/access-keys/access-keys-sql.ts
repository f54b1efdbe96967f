/**
 * The statements every AK/SK-signed request runs, as values: prepared once per connection on Postgres (Prisma's
 * per-query work cost more than these primary-key lookups), and tests can EXPLAIN the very same statements.
 */
import { columnOf } from '../../db/columns.ts';
import type { SqlStatement } from '../../db/database.ts';

/** A key's status while it can sign. */
export const ACTIVE = 'active';

/** What makes a key usable (it can sign, be listed, be deleted), as a Prisma filter; USABLE_KEY's SQL is made from it. */
export const USABLE = { status: ACTIVE, deletedAt: null } as const;

const usableCondition = Object.entries(USABLE)
  .map(([field, value]) => (value === null ? `${columnOf(field)} IS NULL` : `${columnOf(field)} = '${value}'`))
  .join(' AND ');

/** The usable key $1: its domain, sealed secret and actions; no row otherwise. */
export const USABLE_KEY: SqlStatement = {
  name: 'usable-access-key',
  text: `SELECT domain_id, sealed_secret, actions FROM access_keys WHERE access = $1 AND ${usableCondition}`,
};

/** Records a signature's use ($1 fingerprint, $2 until when it could verify): a row, or none if it was recorded before. */
export const CLAIM_SIGNATURE: SqlStatement = {
  name: 'claim-signature',
  text: `INSERT INTO seen_signatures (fingerprint, expires_at) VALUES ($1, $2)
         ON CONFLICT (fingerprint) DO NOTHING
         RETURNING 1 AS claimed`,
};
