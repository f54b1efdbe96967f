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

/**
 * A cursor over the CA's CRL entries (revoked, certificate not yet expired), so signing holds one page of rows at
 * a time. Rows come in the table's order: RFC 5280 orders no CRL entries, and asking for serial order costs
 * Postgres a random heap read per row (serials are random) or a sort of them all. Each row is one text value,
 * `serial-hex epoch-ms reason`: a million rows as three typed columns cost Prisma about a second more to decode.
 */
export function declareCrlEntriesCursorSql(caId: string, now: Date): Prisma.Sql {
  return Prisma.sql`
    DECLARE crl_entries NO SCROLL CURSOR FOR
    SELECT serial_number || ' ' || (extract(epoch FROM revoked_at) * 1000)::bigint || ' ' || reason_code AS entry
      FROM revocations
     WHERE issuer_id = ${caId}::uuid AND not_after > ${now}::timestamptz`;
}

export const fetchCrlEntriesSql = (rows: number): Prisma.Sql => Prisma.sql`FETCH ${Prisma.raw(String(Math.trunc(rows)))} FROM crl_entries`;
export const closeCrlEntriesSql = (): Prisma.Sql => Prisma.sql`CLOSE crl_entries`;
