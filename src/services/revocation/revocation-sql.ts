/**
 * The revoke and CRL paths' raw statements, as values: the services run them and the tests EXPLAIN the very same
 * statements to show that each reaches its row by key, never by scanning the revocations.
 */
import { Prisma } from '../../db/generated/client.ts';
import { releasedBefore } from '../billing/prepaid.ts';
import { REVOKING_STATUSES, SIGNING_STATUSES } from './revocation-rules.ts';

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

/** Revocations per page of CRL entries: about 1 MiB of DER. */
const CRL_ENTRIES_PER_PAGE = 20_000;

/**
 * Stores the CA's CRL entries (revoked, certificate not yet expired) as the pages 1..n of its CRL number's
 * `crl_segments`: each page the stored DER of its revocations (`entry_der`) concatenated by Postgres; returns each
 * page's number, entry count and size. The entries thus never travel from Node to Postgres: the signer reads
 * them once and writes only the CRL's head (page 0) and tail (page n + 1). Pages are cut in the table's order
 * (`row_number() OVER ()`): RFC 5280 orders no CRL entries, and serial order would cost a random heap read per row
 * (serials are random) or a sort of them all.
 */
export function pageCrlEntriesSql(caId: string, crlNumber: bigint, now: Date): Prisma.Sql {
  return Prisma.sql`
    WITH pages AS (
      SELECT page::int + 1 AS seq, string_agg(entry_der, ''::bytea) AS bytes, count(*)::int AS count
        FROM (SELECT entry_der, row_number() OVER () / ${CRL_ENTRIES_PER_PAGE} AS page
                FROM revocations
               WHERE issuer_id = ${caId}::uuid AND not_after > ${now}::timestamptz) numbered
       GROUP BY page
    ), stored AS (
      INSERT INTO crl_segments (ca_id, crl_number, seq, bytes) SELECT ${caId}::uuid, ${crlNumber}, seq, bytes FROM pages
    )
    SELECT seq, count, octet_length(bytes)::int AS byte_length FROM pages ORDER BY seq`;
}

/** The CRL pages `first`..`last` of the CA's CRL number, in order. */
export function crlPagesSql(caId: string, crlNumber: bigint, first: number, last: number): Prisma.Sql {
  return Prisma.sql`
      SELECT bytes FROM crl_segments
       WHERE ca_id = ${caId}::uuid AND crl_number = ${crlNumber} AND seq BETWEEN ${first} AND ${last}
       ORDER BY seq`;
}

/** Stores a signed CRL's head and tail as the pages 0 and `tailSeq` around its entry pages. */
export function insertCrlHeadAndTailSql(caId: string, crlNumber: bigint, head: Uint8Array, tailSeq: number, tail: Uint8Array): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO crl_segments (ca_id, crl_number, seq, bytes)
    VALUES (${caId}::uuid, ${crlNumber}, 0, ${head}),
           (${caId}::uuid, ${crlNumber}, ${tailSeq}, ${tail})`;
}

/** Stores the CRL whose pages are all in `crl_segments`, its DER their concatenation in order. */
export function insertCrlFromSegmentsSql(
  caId: string,
  crl: { crlNumber: bigint; thisUpdate: Date; nextUpdate: Date; revokedCount: number },
): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO crls (ca_id, crl_number, this_update, next_update, revoked_count, der)
    SELECT ${caId}::uuid, ${crl.crlNumber}, ${crl.thisUpdate}::timestamptz, ${crl.nextUpdate}::timestamptz, ${crl.revokedCount},
           string_agg(bytes, ''::bytea ORDER BY seq)
      FROM crl_segments WHERE ca_id = ${caId}::uuid AND crl_number = ${crl.crlNumber}`;
}

/** Room to group the CRL's pages in memory (about the CRL's size): without it Postgres would spill them to disk. */
export const CRL_PAGING_WORK_MEM_SQL = Prisma.sql`SET LOCAL work_mem = '256MB'`;

/** CAs that can sign and whose CRL is due: a revocation waits, half its validity passed, or CRL enabled and none yet. */
export function dueCrlCaIdsSql(now: Date): Prisma.Sql {
  return Prisma.sql`
      SELECT ca.id::text AS id
        FROM certificate_authorities ca
        LEFT JOIN LATERAL (
          SELECT this_update, next_update FROM crls WHERE crls.ca_id = ca.id ORDER BY crl_number DESC LIMIT 1
        ) latest ON true
       WHERE ca.removed_at IS NULL
         AND (ca.delete_time IS NULL OR ca.delete_time > ${now}::timestamptz)
         AND (ca.prepaid_until IS NULL OR ca.prepaid_until > ${releasedBefore(now)}::timestamptz)
         AND ca.status IN (${Prisma.join([...SIGNING_STATUSES])})
         AND ca.key_ref IS NOT NULL
         AND ca.certificate_der IS NOT NULL
         AND (ca.crl_stale_since IS NOT NULL
              OR (latest.this_update IS NULL AND ca.crl_enabled)
              OR latest.this_update + (latest.next_update - latest.this_update) / 2 <= ${now}::timestamptz)`;
}
