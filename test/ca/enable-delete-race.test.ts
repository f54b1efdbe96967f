/**
 * Enabling a subordinate while its issuer is being deleted, both at once on real Postgres, many times: whichever
 * commits first, no subordinate ends ACTIVED under a DELETED issuer. The enable holds the issuer's row (shared)
 * while it judges it, and the deletion locks that row before it disables the subordinates it finds ACTIVED.
 */
import t from 'tap';
import { CA, DN, client } from './support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';

const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres);
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;
const ROUNDS = 25;

t.test(`${ROUNDS} rounds of enable(subordinate) racing delete(issuer): never an ACTIVED CA under a DELETED one`, async (t) => {
  const outcomes = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const root = await api.root({ distinguished_name: { ...DN, common_name: `race-root-${round}` } });
    const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: `race-sub-${round}` } });
    for (const id of [sub, root]) t.equal((await api.call('POST', `${CA}/${id}/disable`)).status, 204);
    const [enabled, deleted] = await Promise.all([
      api.call('POST', `${CA}/${sub}/enable`),
      api.call('DELETE', `${CA}/${root}?pending_days=7`),
    ]);
    t.equal(deleted.status, 204, 'the deletion is never refused');
    t.ok([204, 400].includes(enabled.status), `enable: ${enabled.status}`);
    const rows = await prisma.certificateAuthority.findMany({ where: { id: { in: [root, sub] } }, select: { id: true, status: true } });
    const status = Object.fromEntries(rows.map((row) => [row.id, row.status]));
    t.equal(status[root], 'DELETED');
    t.equal(status[sub], 'DISABLED', `round ${round}: the subordinate is not left ACTIVED (enable answered ${enabled.status})`);
    const key = `enable ${enabled.status}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  t.comment(`outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});
