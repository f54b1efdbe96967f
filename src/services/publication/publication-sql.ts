/** CRL publication's raw statements, as values (tests can EXPLAIN them). */
import { Prisma } from '../../db/generated/client.ts';

/** Records the CRL a bucket of the CA now holds. */
export function recordBucketSql(caId: string, bucket: string, crlNumber: bigint): Prisma.Sql {
  return Prisma.sql`INSERT INTO crl_publications (ca_id, bucket, crl_number) VALUES (${caId}::uuid, ${bucket}, ${crlNumber})
    ON CONFLICT (ca_id, bucket) DO UPDATE SET crl_number = EXCLUDED.crl_number`;
}

/**
 * Adds the bucket the CA maps to now to its buckets and, when every writable one holds the CRL, records its number
 * (what the release before crl_publications reads: prisma/schema.prisma); raw, so that publishing does not move the
 * CA's update_time.
 */
export function recordCrlPublicationSql(caId: string, bucket: string, publishedCrlNumber: bigint | null): Prisma.Sql {
  return Prisma.sql`UPDATE certificate_authorities
     SET crl_publication_buckets = CASE WHEN ${bucket} = ANY(crl_publication_buckets) THEN crl_publication_buckets
                                        ELSE array_append(crl_publication_buckets, ${bucket}::text) END
         ${publishedCrlNumber === null ? Prisma.empty : Prisma.sql`, crl_published_number = ${publishedCrlNumber}`}
   WHERE id = ${caId}::uuid`;
}

/** Each CA with a CRL: its configured bucket, the buckets it publishes to, and those holding its newest CRL. */
export const UNPUBLISHED_CRLS_SQL = Prisma.sql`
      SELECT ca.id::text AS id, ca.obs_bucket_name, ca.crl_publication_buckets AS buckets,
             ARRAY(SELECT p.bucket FROM crl_publications p
                    WHERE p.ca_id = ca.id AND p.crl_number >= latest.crl_number) AS holding_newest
        FROM certificate_authorities ca
        JOIN LATERAL (SELECT crl_number FROM crls WHERE crls.ca_id = ca.id ORDER BY crl_number DESC LIMIT 1) latest ON true
       WHERE ca.certificate_der IS NOT NULL`;
