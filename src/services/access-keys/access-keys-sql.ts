/** The access-key services' raw statements, as values (tests can EXPLAIN them). */
import type { SignatureUse } from '../../auth/sdk-hmac.ts';
import { Prisma } from '../../db/generated/client.ts';

/** Records the signature's use unless it is already recorded (then 0 rows). */
export function claimSignatureSql(use: SignatureUse): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO seen_signatures (fingerprint, expires_at) VALUES (${use.fingerprint}, ${use.validUntil})
    ON CONFLICT (fingerprint) DO NOTHING`;
}
