/**
 * The certificate list reads a page as an index scan stopped by its LIMIT, not a sort of the domain's certificates
 * (migration 20261207184944_certificate_list_sort_indexes; figures in bench/lists/RESULTS.md): the plans of the
 * list's own statement (certificate-sql.ts) over a domain of 30,000 certificates, on Postgres when DATABASE_URL is
 * set and on PGlite (whose planner, Postgres 18's, chooses the same plans).
 */
import t from 'tap';
import { Prisma } from '../../src/db/generated/client.ts';
import type { ListCertificatesQuery } from '../../src/services/certificates/certificate-input.ts';
import { listCertificatesSql } from '../../src/services/certificates/certificate-sql.ts';
import { testDatabase } from '../helpers/database.ts';

if (!process.env.DATABASE_URL) t.comment('DATABASE_URL is not set: planning on PGlite only (set it to plan on Postgres too)');

const database = await testDatabase();
t.teardown(() => database.close());
const db = database.prisma;

const DOMAIN = 'plan-domain';
const CERTIFICATES = 30_000;
const RETIRED = 300;
const caId = (n: number) => Prisma.sql`md5(${`plan-ca-${n}`})::uuid`;
const [{ retired }] = await db.$queryRaw<{ retired: string }[]>`SELECT ${caId(2)}::text AS retired`;

// Three CAs of the domain: the oldest RETIRED certificates under CA 2 (retired since), the rest two thirds under
// CA 0, one third under CA 1; ten a second (ties broken by id); another domain of 10,000 beside them.
await db.$executeRaw`
  INSERT INTO certificate_authorities (id, domain_id, type, status, gen_mode, common_name, key_usages, updated_at)
  SELECT md5('plan-ca-' || n)::uuid, ${DOMAIN}, 'SUBORDINATE', 'ACTIVED', 'GENERATE', 'CA ' || n, '{}', now()
    FROM generate_series(0, 3) AS n`;
await db.$executeRaw`
  INSERT INTO certificates (id, domain_id, issuer_id, status, gen_mode, key_algorithm, signature_algorithm, common_name,
                            serial_number, not_before, not_after, certificate_der, created_at, deleted_at)
  SELECT md5('plan-cert-' || i)::uuid, CASE WHEN i > ${CERTIFICATES}::int THEN 'plan-other' ELSE ${DOMAIN} END,
         md5('plan-ca-' || CASE WHEN i > ${CERTIFICATES}::int THEN 3 WHEN i <= ${RETIRED}::int THEN 2 WHEN i % 3 = 0 THEN 1 ELSE 0 END)::uuid,
         CASE WHEN i % 50 = 0 THEN 'REVOKED' ELSE 'ISSUED' END, 'GENERATE', 'EC256', 'SHA256',
         'host-' || substr(md5(i::text), 1, 10) || '.example.com', md5('plan-serial-' || i),
         created, created + (30 + i % 365) * interval '1 day', decode(repeat(md5(i::text), 8), 'hex'),
         created, CASE WHEN i % 100 = 0 THEN created END
    FROM (SELECT i, timestamptz '2026-01-01' + (i / 10) * interval '1 second' AS created
            FROM generate_series(1, ${CERTIFICATES + 10_000}::int) AS i) AS s`;
await db.$executeRawUnsafe('ANALYZE certificates');
await db.$executeRawUnsafe('ANALYZE certificate_authorities');

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** The page's plan: the node reading `certificates` and the node types above it (root first). */
async function pagePlan(query: Partial<ListCertificatesQuery>): Promise<{ scan: PlanNode; above: string[] }> {
  const { page } = listCertificatesSql(
    DOMAIN,
    { limit: 20, offset: 0, sort_dir: 'DESC', ...query } as ListCertificatesQuery,
    new Date('2026-12-07T00:00:00Z'),
  );
  const [row] = await db.$queryRaw<{ 'QUERY PLAN': unknown }[]>`EXPLAIN (FORMAT JSON) ${page}`;
  const json = row['QUERY PLAN'];
  const [{ Plan }] = (typeof json === 'string' ? JSON.parse(json) : json) as [{ Plan: PlanNode }];
  const find = (node: PlanNode, path: string[]): { scan: PlanNode; above: string[] } | undefined => {
    if (node['Relation Name'] === 'certificates') return { scan: node, above: path };
    for (const child of node.Plans ?? []) {
      const found = find(child, [...path, node['Node Type']]);
      if (found) return found;
    }
    return undefined;
  };
  const found = find(Plan, []);
  if (!found) throw new Error(`no scan of certificates in ${JSON.stringify(Plan)}`);
  return found;
}

const cases: [label: string, query: Partial<ListCertificatesQuery>, index: string][] = [
  ['the default page (create_time DESC)', {}, 'certificates_domain_id_created_at_id_idx'],
  ['create_time ASC', { sort_dir: 'ASC' }, 'certificates_domain_id_created_at_id_idx'],
  ['sort_key=not_after', { sort_key: 'not_after' }, 'certificates_domain_id_not_after_id_idx'],
  ['status=ISSUED, sort_key=not_after', { status: 'ISSUED', sort_key: 'not_after' }, 'certificates_domain_id_not_after_id_idx'],
  ["issuer_id of a retired CA (the console's CA page)", { issuer_id: retired }, 'certificates_issuer_id_created_at_id_idx'],
];

for (const [label, query, index] of cases) {
  t.test(`${label}: an index scan of ${index} under the LIMIT, no sort`, async (t) => {
    const { scan, above } = await pagePlan(query);
    t.match(scan['Node Type'], /^Index Scan/, `${scan['Node Type']} on certificates`);
    t.equal(scan['Index Name'], index);
    t.equal(above[0], 'Limit', 'the LIMIT stops the scan');
    t.same(
      above.filter((type) => type.includes('Sort')),
      [],
      `nothing sorted above the scan (${above.join(' > ')})`,
    );
  });
}
