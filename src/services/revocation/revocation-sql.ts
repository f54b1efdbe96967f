/**
 * The revoke path's statements on revocation data, as values: the service runs them and the tests EXPLAIN the
 * very same statements to show that each reaches its row by key, never by scanning the revocations.
 */
import { Prisma } from '../../db/generated/client.ts';
import { REVOKING_STATUSES } from './revocation-rules.ts';

/** Inserts a revocation unless the serial is already revoked under that issuer (then 0 rows). */
export function insertRevocationSql(entry: {
  issuerId: string;
  serialNumber: string;
  revokedAt: Date;
  reasonCode: number;
  notAfter: Date;
}): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after)
    VALUES (${entry.issuerId}::uuid, ${entry.serialNumber}, ${entry.revokedAt}::timestamptz, ${entry.reasonCode},
            ${entry.notAfter}::timestamptz)
    ON CONFLICT (issuer_id, serial_number) DO NOTHING`;
}

/**
 * Marks the issuer's CRL stale, only while the issuer may still revoke (0 rows otherwise). The mark strictly
 * increases per CA, so the CRL job can clear exactly the mark it saw before reading the revocations and never
 * swallow a revocation that committed while it was signing.
 */
export function markIssuerCrlStaleSql(issuerId: string, now: Date): Prisma.Sql {
  return Prisma.sql`
    UPDATE certificate_authorities
       SET crl_stale_since = GREATEST(${now}::timestamptz, crl_stale_since + interval '1 millisecond')
     WHERE id = ${issuerId}::uuid
       AND status IN (${Prisma.join([...REVOKING_STATUSES])})
       AND removed_at IS NULL
    RETURNING key_algorithm`;
}
