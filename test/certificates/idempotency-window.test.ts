/**
 * The Idempotency-Key window (24 hours) on the manual clock: inside it a retry replays the first certificate and a
 * different body is refused; once it has passed, the key is free again and the same request issues anew.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { IDEMPOTENCY_EXPIRY_JOB, IDEMPOTENCY_WINDOW_MS } from '../../src/services/certificates/idempotency.ts';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa } from './support.ts';

const clock = new ManualClock();
const harness = await createTestApp({ clock });
const dir = await scratch('idempotency-window');
t.teardown(async () => {
  await harness.close();
  await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
});
const { app } = harness;
const auth = harness.auth();
const root = await seedCa(harness, { commonName: 'idem-window-root', keyAlgorithm: 'EC256' });
const sub = await seedCa(harness, { commonName: 'idem-window-sub', keyAlgorithm: 'EC256', parent: root, pathLength: 0 });
const { csr } = await opensslCsr(dir, 'idem-window', [...KEY_ARGS.p256], ['-subj', '/CN=idem-window.example.com']);

const issue = (days: number, key: string) =>
  app.inject({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    headers: { ...auth, 'idempotency-key': key },
    payload: { issuer_id: sub.id, csr, validity: { type: 'DAY', value: days } },
  });
const certificateId = (response: { json(): unknown }) => (response.json() as { certificate_id: string }).certificate_id;

t.test('a key replays for 24 hours, then issues anew', async (t) => {
  const first = await issue(30, 'window-1');
  t.equal(first.statusCode, 200);

  clock.advance(IDEMPOTENCY_WINDOW_MS - 1);
  const lastReplay = await issue(30, 'window-1');
  t.equal(certificateId(lastReplay), certificateId(first), 'a millisecond before the window ends: the same certificate');
  t.equal((await issue(31, 'window-1')).statusCode, 409, 'and another body is still refused');

  clock.advance(1);
  const fresh = await issue(30, 'window-1');
  t.equal(fresh.statusCode, 200);
  t.not(certificateId(fresh), certificateId(first), 'at 24 hours the key is free: a new certificate');
  const replayOfFresh = await issue(30, 'window-1');
  t.equal(certificateId(replayOfFresh), certificateId(fresh), 'and the key now replays the new one');
  t.equal(
    await harness.database.prisma.certificate.count({ where: { id: { in: [certificateId(first), certificateId(fresh)] } } }),
    2,
    'both certificates are stored',
  );
});

t.test('after the window, another body under the same key issues instead of 409', async (t) => {
  t.equal((await issue(30, 'window-2')).statusCode, 200);
  clock.advance(IDEMPOTENCY_WINDOW_MS + 60_000);
  const other = await issue(45, 'window-2');
  t.equal(other.statusCode, 200, 'the expired claim does not hold the key');
});

t.test('idempotency-expiry: rows past the window and the clock margin go, younger ones stay and still replay', async (t) => {
  const { prisma } = harness.database;
  const job = harness.app.jobRunner.job(IDEMPOTENCY_EXPIRY_JOB);
  t.equal(job.intervalSeconds, 3600, 'hourly');
  const old = await issue(30, 'expiry-old');
  clock.advance(IDEMPOTENCY_WINDOW_MS);
  const young = await issue(30, 'expiry-young');
  const rowOf = (key: string) => prisma.idempotencyKey.findFirst({ where: { key } });

  await job.run({ now: clock.now(), log: harness.app.log });
  t.ok(await rowOf('expiry-old'), 'just past the window: kept for another instance whose clock is behind');
  clock.advance(5 * 60_000 + 1);
  const { deleted } = (await job.run({ now: clock.now(), log: harness.app.log })) as { deleted: number };
  t.ok(deleted >= 1, `deleted ${deleted}`);
  t.notOk(await rowOf('expiry-old'), 'past the window and the margin: gone');
  t.ok(await rowOf('expiry-young'), 'a key inside its window stays');
  t.equal(certificateId(await issue(30, 'expiry-young')), certificateId(young), 'and still replays');
  t.not(certificateId(await issue(30, 'expiry-old')), certificateId(old), 'the expired key issues anew');
});
