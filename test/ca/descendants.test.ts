/**
 * Revoking or deleting a CA stops every CA below it, not only its direct subordinates: a chain root → B → C → D
 * loses C and D with B (each disabling audited), and none of them is enabled again while a CA above it is deleted,
 * gone or revoked.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from './support.ts';

const DAY = 86_400_000;
// Moved only by the last test.
const clock = new ManualClock(Date.parse('2026-06-10T08:00:00Z'));
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const api = client(harness);
const { prisma } = harness.database;

/** root → b → c → d, each ACTIVED; names carry `label`. */
async function chain(label: string, root?: string) {
  const dn = (name: string) => ({ distinguished_name: { ...DN, common_name: `${label}-${name}` } });
  root ??= await api.root(dn('root'));
  const b = await api.subordinate(root, { ...dn('b'), path_length: 2, validity: { type: 'DAY', value: 300 } });
  const c = await api.subordinate(b, { ...dn('c'), path_length: 1, validity: { type: 'DAY', value: 200 } });
  const d = await api.subordinate(c, { ...dn('d'), path_length: 0, validity: { type: 'DAY', value: 100 } });
  return { root, b, c, d };
}

const issue = (issuerId: string) =>
  api.call('POST', '/v1/private-certificates', {
    issuer_id: issuerId,
    distinguished_name: { common_name: 'leaf.descendants' },
    validity: { type: 'DAY', value: 10 },
  });

const status = async (id: string) => (await api.show(id)).status as string;

const disableAudits = (id: string) => prisma.auditEvent.findMany({ where: { resourceId: id, action: 'pca:ca:disable' } });

t.test('revoking an intermediate disables every CA below it; none is enabled again', async (t) => {
  const { root, b, c, d } = await chain('revoke');
  t.equal((await issue(c)).status, 200, 'C issues while its chain is valid');
  t.equal((await api.call('POST', `${CA}/${b}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);

  t.equal(await status(b), 'DISABLED', 'the revoked CA is disabled');
  t.equal(await status(c), 'DISABLED', 'its subordinate too');
  t.equal(await status(d), 'DISABLED', 'and the CA below that');
  t.equal(await status(root), 'ACTIVED', 'the root above is untouched');
  assertError(t, await issue(c), 400, 'PCA.00020001', /status DISABLED/);
  assertError(t, await issue(d), 400, 'PCA.00020001', /status DISABLED/);

  const cAudits = await disableAudits(c);
  t.equal(cAudits.length, 1, "C's disabling is audited");
  t.match(cAudits[0]!.detail, { reason: `issuer ${b} revoked` });
  const dAudits = await disableAudits(d);
  t.equal(dAudits.length, 1, "D's disabling is audited");
  t.match(dAudits[0]!.detail, { reason: new RegExp(`^issuer ${b} revoked \\(above its issuer ${c}\\)$`) });

  assertError(t, await api.call('POST', `${CA}/${c}/enable`), 400, 'PCA.00020001', new RegExp(`${b}.* is revoked`));
  assertError(t, await api.call('POST', `${CA}/${d}/enable`), 400, 'PCA.00020001', new RegExp(`${b}.* is revoked`));
  assertError(t, await api.call('POST', `${CA}/${b}/enable`), 400, 'PCA.00020001', /CA certificate is revoked/);
  t.equal(await status(c), 'DISABLED', 'still disabled after the refused enable');
});

t.test('revoking a subordinate already DISABLED still disables the CAs below it', async (t) => {
  const { b, c, d } = await chain('revoke-disabled');
  t.equal((await api.call('POST', `${CA}/${b}/disable`)).status, 204);
  t.equal((await issue(c)).status, 200, 'C issues under a disabled (not revoked) B');
  t.equal((await api.call('POST', `${CA}/${b}/revoke`, {})).status, 204);
  t.equal(await status(c), 'DISABLED');
  t.equal(await status(d), 'DISABLED');
});

t.test('a CA whose certificate is revoked is never enabled again, whatever the case of its stored serial', async (t) => {
  const { b, c } = await chain('revoke-serial');
  const row = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: c } });
  // The serial as another writer could have stored it: the revocation is keyed by its canonical form.
  await prisma.certificateAuthority.update({ where: { id: c }, data: { serialNumber: row.serialNumber!.toUpperCase() } });
  t.equal((await api.call('POST', `${CA}/${c}/revoke`, {})).status, 204);
  t.equal(await status(c), 'DISABLED');
  assertError(t, await api.call('POST', `${CA}/${c}/enable`), 400, 'PCA.00020001', /CA certificate is revoked/);
  t.equal(await status(b), 'ACTIVED', 'the issuer above is untouched');
});

t.test('deleting a root disables the whole tree below it; enabled again only under a restored root', async (t) => {
  const { root, b, c, d } = await chain('delete');
  t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  t.equal((await issue(c)).status, 200, 'C issues under a disabled root');
  t.equal((await api.call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);

  for (const [name, id] of [
    ['B', b],
    ['C', c],
    ['D', d],
  ] as const) {
    t.equal(await status(id), 'DISABLED', `${name} is disabled with the root`);
  }
  assertError(t, await issue(c), 400, 'PCA.00020001', /status DISABLED/);
  t.match((await disableAudits(b))[0]?.detail, { reason: `issuer ${root} deleted` }, "B's disabling is audited as before");
  t.match((await disableAudits(c))[0]?.detail, { reason: `issuer ${root} deleted (above its issuer ${b})` }, "C's too");
  t.match((await disableAudits(d))[0]?.detail, { reason: `issuer ${root} deleted (above its issuer ${c})` }, "and D's");
  t.equal((await disableAudits(c)).length, 1);

  t.equal((await api.call('POST', `${CA}/${b}/enable`)).status, 400, 'B is refused under its deleted root');
  assertError(t, await api.call('POST', `${CA}/${c}/enable`), 400, 'PCA.00020001', new RegExp(`${root} above its issuer is deleted`));
  assertError(t, await api.call('POST', `${CA}/${d}/enable`), 400, 'PCA.00020001', new RegExp(`${root} above its issuer is deleted`));

  t.equal((await api.call('POST', `${CA}/${root}/restore`)).status, 204);
  for (const id of [b, c, d]) t.equal((await api.call('POST', `${CA}/${id}/enable`)).status, 204, 'enabled again top-down');
  t.equal((await issue(d)).status, 200);
});

t.test('a CA under a removed ancestor cannot be enabled', async (t) => {
  const { root, b, c } = await chain('removed');
  t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  t.equal((await api.call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);
  // The deletion job's work, as far as enable sees it.
  await prisma.certificateAuthority.update({ where: { id: root }, data: { removedAt: new Date() } });
  assertError(t, await api.call('POST', `${CA}/${b}/enable`), 400, 'PCA.00020001', /issuing CA .* no longer exists/);
  assertError(t, await api.call('POST', `${CA}/${c}/enable`), 400, 'PCA.00020001', new RegExp(`${root} above its issuer no longer exists`));
});

t.test('one level: deleting a CA disables its direct subordinate and touches nothing else', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'one-level-root' } });
  const other = await api.root({ distinguished_name: { ...DN, common_name: 'one-level-other' } });
  const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'one-level-sub' } });
  const unrelated = await api.subordinate(other, { distinguished_name: { ...DN, common_name: 'one-level-unrelated' } });
  t.equal((await api.call('POST', `${CA}/${root}/disable`)).status, 204);
  t.equal((await api.call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);
  t.equal(await status(sub), 'DISABLED');
  t.equal(await status(unrelated), 'ACTIVED', "another root's subordinate is untouched");
  t.equal((await disableAudits(sub)).length, 1);
  t.equal((await disableAudits(unrelated)).length, 0);
});

t.test("a prepaid root's release disables the whole tree below it (the ca-deletion job)", async (t) => {
  const { id: root, expiry } = await api.prepaidRoot({ period_type: 2, period_num: 1, is_auto_renew: 0 });
  const { b, c, d } = await chain('release', root);
  clock.set(expiry + 30 * DAY);
  // (The one-level test's root, deleted for 7 days, goes in the same run.)
  t.match(await harness.app.jobRunner.runOnce('ca-deletion'), { removed: 2 });
  for (const id of [b, c, d]) t.equal(await status(id), 'DISABLED');
  const reason = `issuer ${root} released: prepaid retention period ended`;
  t.match((await disableAudits(b))[0]?.detail, { reason });
  t.match((await disableAudits(d))[0]?.detail, { reason: `${reason} (above its issuer ${c})` });
  assertError(t, await api.call('POST', `${CA}/${c}/enable`), 400, 'PCA.00020001', new RegExp(`${root} above its issuer no longer exists`));
});
