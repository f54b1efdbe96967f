/**
 * Tag reads of a tenant with more live certificates than one statement can bind (Prisma's limit is 32,766 values):
 * the domain's tags, the filter and the count answer 200, paged in Postgres, and another tenant's rows change
 * nothing. Before, all three loaded every live id and sent it back as `IN (...)`, and failed with 500 past the limit.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { OTHER_DOMAIN, createTestApp } from '../helpers/app.ts';
import { DN, client } from '../ca/support.ts';

const CERT = '/v1/private-certificates';
const MANY = 33_000;
const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;

const root = await api.root({ distinguished_name: { ...DN, common_name: 'scale-root' } });
const issued = await call('POST', CERT, {
  issuer_id: root,
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  distinguished_name: { common_name: 'scale-template' },
  validity: { type: 'DAY', value: 10 },
});
const template = issued.body.certificate_id as string;
// Copies of one issued row (new ids and serials, one second apart, older than it), plus one deleted copy.
await prisma.$executeRawUnsafe(
  `INSERT INTO certificates (id, domain_id, issuer_id, type, status, gen_mode, key_algorithm, signature_algorithm, common_name,
     serial_number, not_before, not_after, certificate_der, enterprise_project_id, created_at, deleted_at)
   SELECT gen_random_uuid(), domain_id, issuer_id, type, status, gen_mode, key_algorithm, signature_algorithm, 'bulk-' || n,
     md5(n::text || random()::text), not_before, not_after, certificate_der, enterprise_project_id,
     created_at - n * interval '1 second', CASE WHEN n = $2 THEN now() END
   FROM certificates, generate_series(1, $2) AS n WHERE id = $1::uuid`,
  template,
  MANY,
);
const tagged = (await prisma.certificate.findFirstOrThrow({ where: { commonName: 'bulk-7' } })).id;
for (const [id, value] of [
  [tagged, 'mesh'],
  [template, 'edge'],
]) {
  const created = await call('POST', `${CERT}/${id}/tags/create`, { tags: [{ key: 'team', value }] });
  if (created.status !== 204) throw new Error(`tagging failed: ${JSON.stringify(created.body)}`);
}
// Another tenant's certificate carries a key of its own: it shows nowhere here.
const foreign = randomUUID();
await prisma.$executeRawUnsafe(
  `INSERT INTO certificates SELECT $1::uuid, $2, issuer_id, type, status, gen_mode, path_length, key_algorithm, signature_algorithm,
     common_name, country, state, locality, organization, organizational_unit, md5(random()::text), not_before, not_after,
     certificate_der, sealed_private_key, enterprise_project_id, created_at, deleted_at FROM certificates WHERE id = $3::uuid`,
  foreign,
  OTHER_DOMAIN,
  template,
);
await prisma.tag.create({ data: { domainId: OTHER_DOMAIN, resourceType: 'CERTIFICATE', resourceId: foreign, key: 'theirs', value: 'x' } });
const live = MANY; // the template and MANY copies, less the deleted one

t.test(`${live + 0} live certificates: the domain's tags`, async (t) => {
  const answer = await call('GET', `${CERT}/tags`);
  t.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
  t.same(answer.body, { tags: [{ key: 'team', values: ['edge', 'mesh'] }] });
});

t.test('the filter pages in Postgres: newest first, the total counted, a page at the far end', async (t) => {
  const first = await call('POST', `${CERT}/resource-instances/filter`, { limit: 10 });
  t.equal(first.status, 200, JSON.stringify(first.body).slice(0, 300));
  t.equal(first.body.total_count, live);
  t.same(
    first.body.resources.map((resource: { resource_name: string }) => resource.resource_name),
    ['scale-template', ...Array.from({ length: 9 }, (_, index) => `bulk-${index + 1}`)],
  );
  const last = await call('POST', `${CERT}/resource-instances/filter`, { limit: 10, offset: live - 3 });
  t.same(
    last.body.resources.map((resource: { resource_name: string }) => resource.resource_name),
    [`bulk-${MANY - 3}`, `bulk-${MANY - 2}`, `bulk-${MANY - 1}`],
    'the deleted last copy is not among them',
  );
  const byTag = await call('POST', `${CERT}/resource-instances/filter`, { tags: [{ key: 'team', values: ['mesh'] }] });
  t.match(byTag.body, { total_count: 1, resources: [{ resource_id: tagged, tags: [{ key: 'team', value: 'mesh' }] }] });
  const byName = await call('POST', `${CERT}/resource-instances/filter`, { matches: [{ key: 'resource_name', value: 'BULK-3299' }] });
  t.equal(byName.body.total_count, 11, 'bulk-3299 and bulk-32990..32999, case-insensitive');
});

t.test('the count', async (t) => {
  t.same((await call('POST', `${CERT}/resource-instances/count`, {})).body, { total_count: live });
  t.same((await call('POST', `${CERT}/resource-instances/count`, { tags: [{ key: 'team', values: [] }] })).body, { total_count: 2 });
  t.same((await call('POST', `${CERT}/resource-instances/count`, { tags: [{ key: 'theirs', values: [] }] })).body, { total_count: 0 });
});
