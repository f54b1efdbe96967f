/**
 * Group-committed issuance under concurrency: a burst past the CERTIFICATE quota issues exactly up to the quota
 * (counted per domain, restored by delete), the issuing CA's free_quota pays for exactly its number of
 * certificates, and a request refused on its own (unknown issuer) does not fail the others in its batch.
 * openssl judges the certificates issued in one burst.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa, verifyStrict } from './support.ts';

const QUOTA = 5;
const FREE = 3;
const harness = await createTestApp({ env: { CERTIFICATE_QUOTA: String(QUOTA) } });
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();
const db = harness.database.prisma;
const dir = await scratch('group-commit');
const root = await seedCa(harness, { commonName: 'gc-root' });
const sub = await seedCa(harness, { commonName: 'gc-sub', parent: root });
await db.certificateAuthority.update({ where: { id: sub.id }, data: { freeQuota: FREE } });
const { csr } = await opensslCsr(dir, 'burst', [...KEY_ARGS.p256]);

function issue(issuerId = sub.id) {
  return app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: auth,
    payload: { issuer_id: issuerId, csr, validity: { type: 'DAY', value: 30 } },
  });
}

async function quotaUsed(): Promise<number> {
  const response = await app.inject({ method: 'GET', url: '/v1/private-certificates/quotas', headers: auth });
  return response.json().quotas.resources[0].used;
}

t.test('a concurrent burst past the quota issues exactly the quota; free_quota pays for exactly its number', async (t) => {
  const responses = await Promise.all(Array.from({ length: 12 }, () => issue()));
  const issued = responses.filter((response) => response.statusCode === 200).map((response) => response.json().certificate_id as string);
  const refused = responses.filter((response) => response.statusCode !== 200);
  t.equal(issued.length, QUOTA);
  t.equal(refused.length, 12 - QUOTA);
  for (const response of refused) t.match(response.json().error_msg, /quota of 5 is used up/);
  t.equal(await quotaUsed(), QUOTA);

  const records = await db.billingRecord.findMany({ where: { usageType: 'CERT_ISSUE' } });
  t.same(records.map((record) => record.resourceId).sort(), [...issued].sort(), 'one CERT_ISSUE record per certificate');
  t.equal(records.filter((record) => record.amount.isZero()).length, FREE, 'exactly the free quota is free');
  t.equal((await db.certificateAuthority.findUniqueOrThrow({ where: { id: sub.id } })).freeQuota, 0);
  t.equal(await db.auditEvent.count({ where: { action: 'pca:ca:issueCert', outcome: 'SUCCESS' } }), QUOTA);

  const exported = await app.inject({
    method: 'POST',
    url: `/v1/private-certificates/${issued[0]}/export`,
    headers: auth,
    payload: { type: 'OTHER', is_compressed: 'false' },
  });
  t.equal(exported.statusCode, 200);
  const verified = await verifyStrict(dir, exported.json().certificate, root.pem, [sub.pem]);
  t.ok(verified.ok, verified.stderr);
});

t.test('delete gives its quota back; an unknown issuer in the same batch fails alone and takes none', async (t) => {
  const deleted = await db.certificate.findMany({ where: { deletedAt: null }, take: 2 });
  for (const { id } of deleted)
    t.equal((await app.inject({ method: 'DELETE', url: `/v1/private-certificates/${id}`, headers: auth })).statusCode, 204);
  t.equal(await quotaUsed(), QUOTA - 2);
  const [good, unknown] = await Promise.all([issue(), issue(randomUUID())]);
  t.equal(good!.statusCode, 200, good!.body);
  t.equal(unknown!.statusCode, 404, unknown!.body);
  t.equal(await quotaUsed(), QUOTA - 1);
});
