// Fast unit tests of the session pool under the PKCS#11 key store: a session is lent to one operation at a time,
// waiters are served in order, a failed operation gives its session back, and drain waits for running operations.
import t from 'tap';
import { createSessionPool } from '../../src/keystore/session-pool.ts';
import { gate, settle } from './support.ts';

t.test('never two operations on one session; at most as many at once as sessions', async (t) => {
  const pool = createSessionPool(['a', 'b']);
  const busy = new Set<string>();
  let most = 0;
  const gates = Array.from({ length: 6 }, gate);
  const order: number[] = [];
  const runs = gates.map((g, i) =>
    pool.run(async (session) => {
      t.notOk(busy.has(session), `operation ${i} got a free session`);
      busy.add(session);
      most = Math.max(most, busy.size);
      order.push(i);
      await g.opened;
      busy.delete(session);
      return `${i}:${session}`;
    }),
  );
  await settle();
  t.same(order, [0, 1], 'two sessions: two operations start, the rest wait');
  // End them in a scrambled order: each freed session goes to the longest waiter.
  for (const i of [1, 0, 3, 2, 5, 4]) {
    gates[i].open();
    await settle();
  }
  const results = await Promise.all(runs);
  t.same(order, [0, 1, 2, 3, 4, 5], 'waiters served first come, first served');
  t.equal(most, 2);
  t.equal(results.length, 6);
});

t.test('a failed operation gives its session back', async (t) => {
  const pool = createSessionPool(['only']);
  await t.rejects(
    pool.run(() => {
      throw new Error('token says no');
    }),
    /token says no/,
  );
  t.equal(await pool.run((session) => session), 'only');
});

t.test('drain waits for running operations, then hands over every session', async (t) => {
  const pool = createSessionPool([1, 2, 3]);
  const g = gate();
  let finished = false;
  const running = pool.run(async () => {
    await g.opened;
    finished = true;
  });
  let drained: number[] | undefined;
  const draining = pool.drain().then((sessions) => (drained = sessions));
  await settle();
  t.equal(drained, undefined, 'not while an operation runs');
  g.open();
  await running;
  await draining;
  t.ok(finished);
  t.same([...drained!].sort(), [1, 2, 3]);
});

t.test('after drain, run fails at once instead of waiting for a session that never comes back', async (t) => {
  const pool = createSessionPool(['only']);
  const g = gate();
  const running = pool.run(() => g.opened);
  const draining = pool.drain();
  await t.rejects(
    pool.run(() => 'too late'),
    { name: 'SessionPoolDrainedError' },
    'while draining',
  );
  g.open();
  await running;
  t.same(await draining, ['only']);
  await t.rejects(
    pool.run(() => 'too late'),
    { name: 'SessionPoolDrainedError' },
    'once drained',
  );
});
