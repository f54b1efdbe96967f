/** The access-key services' raw statements, as values (tests can EXPLAIN them). */
import type { SignatureUse } from '../../auth/sdk-hmac.ts';
import { Prisma } from '../../db/generated/client.ts';

/** A key's status while it can sign. */
export const ACTIVE = 'active';

/**
 * Records the signature's use unless it is already recorded or `signer`, the key whose secret made it, is no longer
 * usable (deleted since the request's head was judged): 0 rows in either case.
 */
export function claimSignatureSql(use: SignatureUse, signer: string): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO seen_signatures (fingerprint, expires_at)
    SELECT ${use.fingerprint}::bytea, ${use.validUntil}::timestamptz
    WHERE EXISTS (SELECT 1 FROM access_keys WHERE access = ${signer} AND status = ${ACTIVE} AND deleted_at IS NULL)
    ON CONFLICT (fingerprint) DO NOTHING`;
}
