/**
 * A lock held longer than the pool's statement bound (a large CRL's signing holds the CA's crlSigning lock for
 * seconds): advisoryLockWithin waits for it in slices under the bound, where one waiting statement is cut off.
 * Real Postgres (PGlite has no bound); the bound here is 1 s and the holder keeps the lock for 2.5 s.
 */
import { setTimeout } from 'node:timers/promises';
import t from 'tap';
import { openDatabase } from '../../src/db/database.ts';
import { advisoryLock, advisoryLockWithin, tryAdvisoryLock } from '../../src/db/locks.ts';
import { AppError } from '../../src/errors.ts';
import { emptyRealDatabaseOrSkipTest } from '../helpers/database.ts';

const BOUND_MS = 1000;
const HELD_MS = 2500;

t.test('a waiter outlasts the statement bound in slices under it; past its own wait it gets a 503', async (t) => {
  const url = await emptyRealDatabaseOrSkipTest(t);
  if (!url) return;
  const database = await openDatabase({ url, poolSize: 4, queryWaitMs: BOUND_MS });
  t.teardown(() => database.close());
  const { prisma } = database;

  let held!: () => void;
  const taken = new Promise<void>((resolve) => (held = resolve));
  const holder = prisma.$transaction(
    async (tx) => {
      if (!(await tryAdvisoryLock(tx, 'crlSigning', 'ca-1'))) throw new Error('the lock was not free');
      held();
      await setTimeout(HELD_MS);
    },
    { timeout: 30_000 },
  );
  await taken;

  // Each outcome read as it comes (a rejection is not left waiting for the assertions' turn).
  const outcome = (attempt: Promise<unknown>) =>
    attempt.then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  const inOneStatement = outcome(prisma.$transaction((tx) => advisoryLock(tx, 'crlSigning', 'ca-1'), { timeout: 30_000 }));
  const impatient = outcome(
    prisma.$transaction((tx) => advisoryLockWithin(tx, 'crlSigning', 'ca-1', 300, BOUND_MS / 2), { timeout: 30_000 }),
  );
  const patient = outcome(
    prisma.$transaction(
      async (tx) => {
        await advisoryLockWithin(tx, 'crlSigning', 'ca-1', 20_000, BOUND_MS / 2);
        const [{ lock_timeout }] = await tx.$queryRawUnsafe<{ lock_timeout: string }[]>('SHOW lock_timeout');
        return { locked: true, lock_timeout };
      },
      { timeout: 30_000 },
    ),
  );
  t.match(
    await inOneStatement,
    { error: { message: /statement timeout|Query read timeout/ } },
    'one waiting statement is cut off by the bound',
  );
  const refused = await impatient;
  t.ok('error' in refused && refused.error instanceof AppError, 'past its own wait: an AppError');
  t.match(refused, { error: { statusCode: 503, message: /waited 300 ms for the crlSigning lock/ } }, '503');
  t.same(
    await patient,
    { value: { locked: true, lock_timeout: '10s' } },
    "waited past the bound in slices, then got the lock; the pool's lock_timeout is back",
  );
  await holder;
});
