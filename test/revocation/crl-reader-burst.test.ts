/**
 * A burst of CRL readers while another instance holds the CA's CRL lock (a large CRL's signing takes seconds): the
 * public CRL URL needs no credential, so if each reader held a pooled connection while it waited, a few dozen
 * requests would take the whole pool and every other request would wait with them. Readers of one CA join one
 * signing per process: one connection waits for the lock, the rest of the pool keeps answering. Real Postgres: the
 * test holds the lock itself and watches the waiters in pg_locks, so the order is forced, not hoped for.
 */
import { setTimeout } from 'node:timers/promises';
import t from 'tap';
import { openDatabase } from '../../src/db/database.ts';
import { tryAdvisoryLock } from '../../src/db/locks.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createMetrics } from '../../src/metrics/metrics.ts';
import { createCrlService } from '../../src/services/revocation/crl-service.ts';
import { parseCrlSummary } from '../../src/x509/crl.ts';
import { seedCa } from '../certificates/support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';

const POOL_SIZE = 3;
const READERS = 30;

const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres);
t.teardown(() => harness.close());
const prisma = harness.database.prisma;

t.test('30 readers of a CRL being signed elsewhere hold one connection; the pool still answers; one CRL is signed for all', async (t) => {
  const ca = await seedCa(harness, { commonName: 'crl-reader-burst' });
  const database = await openDatabase({ url: harness.database.url!, poolSize: POOL_SIZE });
  t.teardown(() => database.close());
  const keyStores = createKeyStores({ masterKey: harness.config.masterKey });
  t.teardown(() => keyStores.software.close());
  const crls = createCrlService({
    db: database.prisma,
    clock: { now: () => new Date() },
    keyStores,
    config: harness.config,
    metrics: createMetrics(database.poolStats),
    log: harness.app.log,
  });
  const first = await crls.signNow(ca.id);
  // A revocation waits for the CA's next CRL (its signing failed, say): every reader must get a new one.
  await prisma.certificateAuthority.update({ where: { id: ca.id }, data: { crlStaleSince: new Date() } });

  const lockWaiters = async () => {
    const [{ waiting }] = await prisma.$queryRawUnsafe<{ waiting: number }[]>(
      `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
    );
    return waiting;
  };
  let readers: Promise<unknown>[] = [];
  let mostWaiting = 0;
  let poolAnswered = false;
  let answeredWhileHeld = false;
  await prisma.$transaction(
    async (tx) => {
      t.ok(await tryAdvisoryLock(tx, 'crlSigning', ca.id), 'the test holds the CRL lock, as another instance signing would');
      readers = Array.from({ length: READERS }, () => crls.currentCrl(ca.id));
      const seeWaiters = async () => {
        mostWaiting = Math.max(mostWaiting, await lockWaiters());
      };
      for (await seeWaiters(); mostWaiting === 0; await seeWaiters()) await setTimeout(10);
      // An unrelated query on the readers' pool, while the lock stays held. Should the readers hold every connection,
      // it could not be answered before the lock is released: the waiters seen say so, and the loop ends.
      const query = database.prisma.$queryRaw`SELECT 1`.then(() => (poolAnswered = true));
      while (!poolAnswered && mostWaiting < POOL_SIZE) {
        await seeWaiters();
        await Promise.race([query, setTimeout(10)]);
      }
      // Whatever reader arrives late queues behind the signing that waits: never a second waiter.
      for (let sample = 0; sample < 20; sample++) await seeWaiters();
      answeredWhileHeld = poolAnswered;
    },
    { timeout: 60_000 },
  );
  const answers = await Promise.all(readers);

  t.equal(mostWaiting, 1, 'one connection of the process waited for the lock');
  t.ok(answeredWhileHeld, 'the pool answered another query while the readers waited');
  const numbers = new Set(answers.map((crl) => (crl as { crlNumber: bigint } | null)?.crlNumber));
  t.same([...numbers], [first!.crlNumber + 1n], 'every reader got the CRL signed after the revocation, and only one was signed');
  const der = (answers[0] as { der: Uint8Array }).der;
  t.equal(parseCrlSummary(der).crlNumber, first!.crlNumber + 1n, 'its bytes are that CRL');
  const after = await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: ca.id }, select: { crlStaleSince: true } });
  t.equal(after.crlStaleSince, null, 'nothing waits for a CRL any more');
});
