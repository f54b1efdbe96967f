/**
 * Time-driven CA behaviour with a ManualClock: scheduled deletion finalized by the ca-deletion job, restore,
 * expiry derived on read and stored by the ca-expiry job, both jobs run twice at once; and a disable racing
 * 50 concurrent subordinate issuances from the same CA.
 */
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { caDeletionJob, caExpiryJob } from '../../src/services/ca/ca-jobs.ts';
import { createTestApp } from '../helpers/app.ts';
import { countingTransactions } from '../helpers/database.ts';
import { CA, DN, assertError, client, verifyWithChain, type Json } from './support.ts';

const DAY = 86_400_000;
const clock = new ManualClock(Date.now());
const harness = await createTestApp({ clock });
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;
const jobDeps = {
  db: prisma,
  keyStores: { software: undefined as never, get: () => ({ destroy: async () => undefined }) as never },
  billing: harness.app.services.billing.hooks,
};
const log = harness.app.log;
const runTwiceAtOnce = (make: () => { run: (c: { now: Date; log: typeof log }) => Promise<unknown> }) =>
  Promise.all([make().run({ now: clock.now(), log }), make().run({ now: clock.now(), log })]) as Promise<Json[]>;

t.test('the jobs are registered with the runner', async (t) => {
  t.same(
    harness.app.jobRunner.jobs
      .map((job) => job.name)
      .filter((name) => name.startsWith('ca-'))
      .sort(),
    ['ca-deletion', 'ca-expiry', 'ca-prepaid-renewal'],
  );
});

t.test('scheduled deletion: removed by the job once delete_time passes, exactly once when run twice at once', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'doomed' } });
  await prisma.revocation.create({
    data: { issuerId: root, serialNumber: '01', revokedAt: clock.now(), reasonCode: 1, notAfter: new Date(clock.now().getTime() + DAY) },
  });
  await call('POST', `${CA}/${root}/disable`);
  t.equal((await call('DELETE', `${CA}/${root}?pending_days=7`)).status, 204);
  clock.advance(7 * DAY - 1000);
  t.same(await runTwiceAtOnce(() => caDeletionJob(jobDeps)), [
    { removed: 0, keysDestroyed: 0 },
    { removed: 0, keysDestroyed: 0 },
  ]);
  t.equal((await api.show(root)).status, 'DELETED', 'still waiting one second before delete_time');
  clock.advance(2000);
  const results = await runTwiceAtOnce(() => caDeletionJob(jobDeps));
  t.equal(results[0].removed + results[1].removed, 1, 'one removal between the two runs');
  assertError(t, await call('GET', `${CA}/${root}`), 404, 'PCA.10010002');
  assertError(t, await call('POST', `${CA}/${root}/restore`), 404, 'PCA.10010002');
  t.equal(await prisma.revocation.count({ where: { issuerId: root } }), 1, 'revocation data stays');
  t.equal(await prisma.auditEvent.count({ where: { resourceId: root, action: 'pca:ca:remove' } }), 1);
  t.equal(await prisma.caUsagePeriod.count({ where: { caId: root, endAt: null } }), 0, 'billing ended');
  const listed = (await call('GET', `${CA}?limit=1000`)).body.certificate_authorities.map((ca: Json) => ca.ca_id);
  t.notOk(listed.includes(root));
});

t.test('restore before delete_time: DISABLED, and the job leaves it alone', async (t) => {
  const root = await api.root();
  await call('POST', `${CA}/${root}/disable`);
  await call('DELETE', `${CA}/${root}?pending_days=8`);
  clock.advance(3 * DAY);
  t.equal((await call('POST', `${CA}/${root}/restore`)).status, 204);
  clock.advance(10 * DAY);
  await caDeletionJob(jobDeps).run({ now: clock.now(), log });
  t.match(await api.show(root), { status: 'DISABLED', delete_time: null });
});

t.test('expiry: derived on read at not_after, stored by the job (twice at once is harmless)', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'expiring-root' } });
  const sub = await api.subordinate(root, { validity: { type: 'HOUR', value: 2 } });
  const disabled = await api.subordinate(root, { validity: { type: 'HOUR', value: 2 } });
  await call('POST', `${CA}/${disabled}/disable`);
  // Two hours from the whole second the certificate states (the clock's milliseconds are not in it).
  const notAfter = (await api.show(sub)).not_after;
  t.equal(notAfter, clock.now().getTime() - (clock.now().getTime() % 1000) + 2 * 3_600_000);
  clock.set(notAfter - 1);
  t.equal((await api.show(sub)).status, 'ACTIVED');
  clock.set(notAfter);
  t.equal((await api.show(sub)).status, 'EXPIRED', 'derived when read');
  t.equal((await api.show(disabled)).status, 'EXPIRED');
  t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: sub } })).status, 'ACTIVED', 'not yet stored');
  const ids = (await call('GET', `${CA}?status=EXPIRED&limit=1000`)).body.certificate_authorities.map((ca: Json) => ca.ca_id);
  t.ok(ids.includes(sub) && ids.includes(disabled), 'the EXPIRED filter sees derived expiry');
  t.notOk((await call('GET', `${CA}?status=ACTIVED&limit=1000`)).body.certificate_authorities.some((ca: Json) => ca.ca_id === sub));
  const results = await runTwiceAtOnce(() => caExpiryJob({ db: prisma }));
  t.ok(results[0].expired + results[1].expired >= 2);
  for (const id of [sub, disabled]) {
    t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).status, 'EXPIRED');
    t.equal(await prisma.auditEvent.count({ where: { resourceId: id, action: 'pca:ca:expire' } }), 1);
  }
  t.equal((await call('POST', `${CA}/${sub}/export`)).status, 200, 'an EXPIRED CA still exports');
  t.equal((await call('DELETE', `${CA}/${sub}`)).status, 204);
  t.equal((await call('POST', `${CA}/${sub}/restore`)).status, 204);
  t.equal((await api.show(sub)).status, 'EXPIRED', 'restore past not_after gives EXPIRED');
});

t.test('expiry in bounded transactions: a fleet expiring at once is stored batch by batch, each CA audited once', async (t) => {
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'fleet-root' } });
  const fleet = [];
  for (let index = 0; index < 5; index++) fleet.push(await api.subordinate(root, { validity: { type: 'HOUR', value: 1 } }));
  clock.advance(2 * 3_600_000);
  const counted = countingTransactions(prisma);
  const result = await caExpiryJob({ db: counted }, 300, 2).run({ now: clock.now(), log });
  t.same(result, { expired: 5 });
  t.equal(counted.transactions(), 3, 'batches of 2: 2, 2 and 1');
  for (const id of fleet) {
    t.equal((await prisma.certificateAuthority.findUniqueOrThrow({ where: { id } })).status, 'EXPIRED');
    t.equal(await prisma.auditEvent.count({ where: { resourceId: id, action: 'pca:ca:expire' } }), 1);
  }
});

t.test('disable racing 50 concurrent subordinate issuances: every success committed before the disable, none after', async (t) => {
  clock.set(Date.now());
  const root = await api.root({ distinguished_name: { ...DN, common_name: 'race-root' } });
  const issuer = await api.subordinate(root, { path_length: 1, distinguished_name: { ...DN, common_name: 'race-issuer' } });
  const issue = (index: number) =>
    call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: issuer,
      distinguished_name: { ...DN, common_name: `race-${index}` },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 },
    });
  // Requests keep arriving (one every 10 ms); the disable starts once ten of them have been answered. However the
  // machine schedules the first 45 (on a loaded one all may be queued ahead of the disable), the last five are sent
  // only after the disable returned, so the refused side is never empty.
  let answered = 0;
  let startDisable!: () => void;
  const disableStarted = new Promise<void>((resolve) => (startDisable = resolve));
  const issuances = Array.from({ length: 45 }, (_, index) =>
    new Promise((resolve) => setTimeout(resolve, index * 10))
      .then(() => issue(index))
      .then((response) => {
        if (++answered === 10) startDisable();
        return response;
      }),
  );
  await disableStarted;
  const disabled = await call('POST', `${CA}/${issuer}/disable`);
  t.equal(disabled.status, 204);
  const childrenAtDisable = await prisma.certificateAuthority.count({ where: { issuerId: issuer } });
  const late = await Promise.all(Array.from({ length: 5 }, (_, index) => issue(45 + index)));
  const responses = [...(await Promise.all(issuances)), ...late];
  const successes = responses.filter((response) => response.status === 200);
  const failures = responses.filter((response) => response.status !== 200);
  t.equal(
    await prisma.certificateAuthority.count({ where: { issuerId: issuer } }),
    childrenAtDisable,
    'nothing committed after the disable',
  );
  t.equal(successes.length, childrenAtDisable, 'every success was committed before the disable returned');
  // A refusal is DISABLED or, on a machine so loaded that a queued transaction waited past its limit (PGlite has one
  // connection), the contract's 503: neither wrote anything, which the counts above prove.
  type Answer = (typeof failures)[number];
  const refusedAsDisabled = (response: Answer) =>
    response.status === 400 && response.body.error_code === 'PCA.00020001' && /DISABLED/.test(response.body.error_msg);
  const unavailable = (response: Answer) => response.status === 503 && response.body.error_code === 'PCA.00050002';
  const unexpected = failures.filter((response) => !refusedAsDisabled(response) && !unavailable(response));
  const firstServerError = harness.logs.lines.find((line) => line.includes('"level":50')) ?? 'none';
  t.same(unexpected, [], `every other request saw DISABLED or 503 (first logged server error: ${firstServerError.slice(0, 1500)})`);
  t.same(
    late.filter((response) => !refusedAsDisabled(response) && !unavailable(response)),
    [],
    'the five sent after the disable are refused',
  );
  t.equal(successes.length + failures.length, 50);
  t.comment(
    `${successes.length} issued before the disable, ${failures.length} refused after (${failures.filter(unavailable).length} as 503)`,
  );
  for (const { body } of successes.slice(0, 3)) {
    const exported = (await call('POST', `${CA}/${body.ca_id}/export`)).body;
    await verifyWithChain(t, exported.certificate, exported.certificate_chain, 'a subordinate issued in the race');
  }
});
