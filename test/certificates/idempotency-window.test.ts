/**
 * The Idempotency-Key window (24 hours) on the manual clock: inside it a retry replays the first certificate and a
 * different body is refused; once it has passed, the key is free again and the same request issues anew.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { ManualClock } from '../../src/clock.ts';
import { IDEMPOTENCY_WINDOW_MS } from '../../src/services/certificates/idempotency.ts';
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
