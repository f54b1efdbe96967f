/**
 * Revoke latency with N revocations already recorded under the issuing CA: the revoke call signs the CA's new CRL
 * before it returns (issue #21 item 1), so its cost follows the CRL's size. In-process app (inject), Postgres.
 * Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/crl/revoke.ts 1000000
 */
import { seedCa } from '../../test/certificates/support.ts';
import { createTestApp } from '../../test/helpers/app.ts';
const harness = await createTestApp();
const { app } = harness;
const prisma = harness.database.prisma;
const auth = harness.auth();
const root = await seedCa(harness, { commonName: 'r', keyAlgorithm: 'EC256' });
const ca = await seedCa(harness, { commonName: 's', keyAlgorithm: 'EC256', parent: root });
const issue = async () =>
  (
    await app.inject({
      method: 'POST',
      url: '/v1/private-certificates',
      headers: auth,
      payload: { issuer_id: ca.id, key_algorithm: 'EC256', distinguished_name: { common_name: 'x' }, validity: { type: 'DAY', value: 30 } },
    })
  ).json<{ certificate_id: string }>().certificate_id;
const n = Number(process.argv[2]);
await prisma.$executeRaw`INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after) SELECT ${ca.id}::uuid, md5(i::text), now(), 1, now() + interval '1 year' FROM generate_series(1, ${n}::int) AS i`;
await app.inject({ method: 'POST', url: `/v1/private-certificates/${await issue()}/revoke`, headers: auth, payload: {} });
const times: string[] = [];
for (let i = 0; i < 3; i++) {
  const id = await issue();
  const s = performance.now();
  const r = await app.inject({ method: 'POST', url: `/v1/private-certificates/${id}/revoke`, headers: auth, payload: {} });
  times.push(`${Math.round(performance.now() - s)}ms/${r.statusCode}`);
}
console.log(n, 'existing revocations: revoke latency', times.join(' '));
await harness.close();
process.exit(0);
