/**
 * Transitions on one chain, racing, on a real Postgres (PGlite serves one connection: nothing races there): enabling a
 * grandchild locks its row, then the CAs above it; deleting the root locks the root, then the CAs below it; revoking
 * the middle CA locks it, its issuer, then the CAs below. Whatever the interleaving (the ids, random, decide the lock
 * order), each answers as if it had run alone (no 503 from a deadlock Postgres broke) and no CA is left ACTIVED under
 * a deleted or revoked one.
 */
import t from 'tap';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { CA, DN, client } from './support.ts';

const ROUNDS = 8;
const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres);
t.teardown(() => harness.close());
const api = client(harness);

/** root → b → c, c DISABLED (to be enabled in the race); root DISABLED too when it is to be deleted. */
async function chain(round: number, disableRoot: boolean) {
  const dn = (name: string) => ({ distinguished_name: { ...DN, common_name: `race-${round}-${name}` } });
  const root = await api.root(dn('root'));
  const b = await api.subordinate(root, { ...dn('b'), path_length: 1, validity: { type: 'DAY', value: 300 } });
  const c = await api.subordinate(b, { ...dn('c'), path_length: 0, validity: { type: 'DAY', value: 200 } });
  t.equal((await api.call('POST', `${CA}/${c}/disable`)).status, 204);
  if (disableRoot) t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  return { root, b, c };
}

t.test('enabling a grandchild while its root is deleted: both answer, the grandchild ends DISABLED', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const { root, c } = await chain(round, true);
    const [deleted, enabled] = await Promise.all([
      api.call('DELETE', `${CA}/${root}?pending_days=7`),
      api.call('POST', `${CA}/${c}/enable`),
    ]);
    t.equal(deleted.status, 204, `round ${round}: delete ${JSON.stringify(deleted.body)}`);
    t.ok([204, 400].includes(enabled.status), `round ${round}: enable ${enabled.status} ${JSON.stringify(enabled.body)}`);
    t.equal((await api.show(c)).status, 'DISABLED', `round ${round}: the grandchild of a deleted root is not ACTIVED`);
  }
});

t.test('enabling a grandchild while its parent is revoked: both answer, the grandchild ends DISABLED', async (t) => {
  for (let round = 0; round < ROUNDS; round++) {
    const { b, c } = await chain(ROUNDS + round, false);
    const [revoked, enabled] = await Promise.all([
      api.call('POST', `${CA}/${b}/revoke`, { reason: 'KEY_COMPROMISE' }),
      api.call('POST', `${CA}/${c}/enable`),
    ]);
    t.equal(revoked.status, 204, `round ${round}: revoke ${JSON.stringify(revoked.body)}`);
    t.ok([204, 400].includes(enabled.status), `round ${round}: enable ${enabled.status} ${JSON.stringify(enabled.body)}`);
    t.equal((await api.show(c)).status, 'DISABLED', `round ${round}: the child of a revoked CA is not ACTIVED`);
  }
});
