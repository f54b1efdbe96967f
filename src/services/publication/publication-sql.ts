/** CRL publication's raw statements, as values (tests can EXPLAIN them). */
import { Prisma } from '../../db/generated/client.ts';

/** Records the CA's newest published CRL and its bucket; raw, so that publishing does not move the CA's update_time. */
export function markCrlPublishedSql(caId: string, crlNumber: bigint, bucket: string): Prisma.Sql {
  return Prisma.sql`UPDATE certificate_authorities SET crl_published_number = ${crlNumber}, crl_published_bucket = ${bucket} WHERE id = ${caId}::uuid`;
}

/** Each CA with a CRL: its configured bucket, the bucket it last published to, and whether its newest CRL is out. */
export const UNPUBLISHED_CRLS_SQL = Prisma.sql`
      SELECT ca.id::text AS id, ca.obs_bucket_name, ca.crl_published_bucket,
             COALESCE(ca.crl_published_number >= latest.crl_number, false) AS current
        FROM certificate_authorities ca
        JOIN LATERAL (SELECT crl_number FROM crls WHERE crls.ca_id = ca.id ORDER BY crl_number DESC LIMIT 1) latest ON true
       WHERE ca.certificate_der IS NOT NULL`;
