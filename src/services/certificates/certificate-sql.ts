/** The certificate list's raw statements, as values (tests can EXPLAIN them). */
import { Prisma } from '../../db/generated/client.ts';
import type { CertificateSortKey, ListCertificatesQuery } from './certificate-input.ts';
import type { CertificateStatus } from './certificate-rules.ts';

const SORT_COLUMNS: Record<CertificateSortKey, Prisma.Sql> = {
  create_time: Prisma.sql`c.created_at`,
  common_name: Prisma.sql`c.common_name`,
  issuer_name: Prisma.sql`ca.common_name`,
  not_after: Prisma.sql`c.not_after`,
};

function statusFilter(status: CertificateStatus | undefined, now: Date): Prisma.Sql {
  switch (status) {
    case 'ISSUED':
      return Prisma.sql`AND c.status = 'ISSUED' AND c.not_after > ${now}`;
    case 'EXPIRED':
      return Prisma.sql`AND c.status = 'ISSUED' AND c.not_after <= ${now}`;
    case 'REVOKED':
      return Prisma.sql`AND c.status = 'REVOKED'`;
    default:
      return Prisma.empty;
  }
}

/** The domain's count of listed certificates, and the requested page of them with their issuers' names. */
export function listCertificatesSql(domainId: string, query: ListCertificatesQuery, now: Date): { count: Prisma.Sql; page: Prisma.Sql } {
  const where = Prisma.sql`WHERE c.domain_id = ${domainId} AND c.deleted_at IS NULL ${statusFilter(query.status, now)}
        ${query.name ? Prisma.sql`AND strpos(lower(c.common_name), lower(${query.name})) > 0` : Prisma.empty}
        ${query.issuer_id ? Prisma.sql`AND c.issuer_id = ${query.issuer_id}` : Prisma.empty}`;
  const direction = query.sort_dir === 'ASC' ? Prisma.sql`ASC` : Prisma.sql`DESC`;
  return {
    count: Prisma.sql`SELECT count(*)::int AS total FROM certificates c ${where}`,
    page: Prisma.sql`
        SELECT c.id, c.domain_id AS "domainId", c.issuer_id AS "issuerId", c.status, c.gen_mode AS "genMode",
               c.key_algorithm AS "keyAlgorithm", c.signature_algorithm AS "signatureAlgorithm",
               c.common_name AS "commonName", c.country, c.state, c.locality, c.organization,
               c.organizational_unit AS "organizationalUnit", c.serial_number AS "serialNumber",
               c.not_before AS "notBefore", c.not_after AS "notAfter",
               c.enterprise_project_id AS "enterpriseProjectId", c.created_at AS "createdAt",
               ca.common_name AS "issuerName"
        FROM certificates c LEFT JOIN certificate_authorities ca ON ca.id = c.issuer_id
        ${where}
        ORDER BY ${SORT_COLUMNS[query.sort_key ?? 'create_time']} ${direction}, c.id ${direction}
        LIMIT ${query.limit} OFFSET ${query.offset}`,
  };
}
