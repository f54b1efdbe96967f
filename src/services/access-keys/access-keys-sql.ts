/**
 * The statements every AK/SK-signed request runs, as values: prepared once per connection on Postgres (Prisma's
 * per-query work cost more than these primary-key lookups), and tests can EXPLAIN the very same statements.
 */
import type { SqlStatement } from '../../db/database.ts';

/** A key's status while it can sign. */
export const ACTIVE = 'active';

/** The usable key $1 (not deleted): its domain, sealed secret and actions; no row otherwise. */
export const USABLE_KEY: SqlStatement = {
  name: 'usable-access-key',
  text: `SELECT domain_id, sealed_secret, actions FROM access_keys WHERE access = $1 AND status = '${ACTIVE}' AND deleted_at IS NULL`,
};

/** Records a signature's use ($1 fingerprint, $2 until when it could verify): a row, or none if it was recorded before. */
export const CLAIM_SIGNATURE: SqlStatement = {
  name: 'claim-signature',
  text: `INSERT INTO seen_signatures (fingerprint, expires_at) VALUES ($1, $2)
         ON CONFLICT (fingerprint) DO NOTHING
         RETURNING 1 AS claimed`,
};
