/** CRL publication's raw statements, as values (tests can EXPLAIN them). */
import { Prisma } from '../../db/generated/client.ts';

/**
 * Adds the bucket the CA maps to now to the buckets it publishes to and, when every writable one received the CRL,
 * records its number; raw, so that publishing does not move the CA's update_time.
 */
export function recordCrlPublicationSql(caId: string, bucket: string, publishedCrlNumber: bigint | null): Prisma.Sql {
  return Prisma.sql`UPDATE certificate_authorities
     SET crl_publication_buckets = CASE WHEN ${bucket} = ANY(crl_publication_buckets) THEN crl_publication_buckets
                                        ELSE array_append(crl_publication_buckets, ${bucket}::text) END
         ${publishedCrlNumber === null ? Prisma.empty : Prisma.sql`, crl_published_number = ${publishedCrlNumber}`}
   WHERE id = ${caId}::uuid`;
}

/** Each CA with a CRL: its configured bucket, the buckets it publishes to, and whether its newest CRL is out there. */
export const UNPUBLISHED_CRLS_SQL = Prisma.sql`
      SELECT ca.id::text AS id, ca.obs_bucket_name, ca.crl_publication_buckets,
             COALESCE(ca.crl_published_number >= latest.crl_number, false) AS current
        FROM certificate_authorities ca
        JOIN LATERAL (SELECT crl_number FROM crls WHERE crls.ca_id = ca.id ORDER BY crl_number DESC LIMIT 1) latest ON true
       WHERE ca.certificate_der IS NOT NULL`;
