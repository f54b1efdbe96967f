// Fast unit tests of the lock that keeps PKCS#11 object changes apart from every other use of the token: shared
// tasks overlap, an exclusive task overlaps nothing, arrival order is kept, and a failed task releases the lock.
import t from 'tap';
import { createReadWriteLock } from '../../src/keystore/read-write-lock.ts';
import { gate, settle } from './support.ts';

t.test('shared tasks run together; an exclusive one waits for them and holds off those after it', async (t) => {
  const lock = createReadWriteLock();
  const running = new Set<string>();
  const started: string[] = [];
  const overlaps: string[] = [];
  const gates = new Map<string, ReturnType<typeof gate>>();
  const task = (name: string, exclusive: boolean) => {
    const g = gate();
    gates.set(name, g);
    const body = async () => {
      if (exclusive ? running.size > 0 : [...running].some((other) => other.startsWith('X'))) overlaps.push(name);
      running.add(name);
      started.push(name);
      await g.opened;
      running.delete(name);
      return name;
    };
    return exclusive ? lock.exclusive(body) : lock.shared(body);
  };
  const done = [task('s1', false), task('s2', false), task('X1', true), task('s3', false), task('X2', true), task('s4', false)];
  await settle();
  t.same(started, ['s1', 's2'], 'the shared tasks before the exclusive one start; the one after it waits');
  gates.get('s2')!.open();
  await settle();
  t.same(started, ['s1', 's2'], 'the exclusive task waits for every shared holder');
  gates.get('s1')!.open();
  await settle();
  t.same(started, ['s1', 's2', 'X1'], 'then runs alone');
  gates.get('X1')!.open();
  await settle();
  t.same(started, ['s1', 's2', 'X1', 's3'], 'the shared task queued behind it runs, the next exclusive one waits for it');
  gates.get('s3')!.open();
  await settle();
  t.same(started, ['s1', 's2', 'X1', 's3', 'X2']);
  gates.get('X2')!.open();
  await settle();
  gates.get('s4')!.open();
  t.same(await Promise.all(done), ['s1', 's2', 'X1', 's3', 'X2', 's4'], 'each task answers its own result');
  t.same(started, ['s1', 's2', 'X1', 's3', 'X2', 's4'], 'arrival order kept');
  t.same(overlaps, [], 'no exclusive task overlapped another task');
});

t.test('a failed task releases the lock, exclusive or shared', async (t) => {
  const lock = createReadWriteLock();
  await t.rejects(
    lock.exclusive(async () => {
      throw new Error('token says no');
    }),
    /token says no/,
  );
  await t.rejects(
    lock.shared(async () => {
      throw new Error('no again');
    }),
    /no again/,
  );
  t.equal(await lock.exclusive(async () => 'free'), 'free');
  t.equal(await lock.shared(async () => 'still free'), 'still free');
});

t.test('a burst of shared tasks cannot starve an exclusive one', async (t) => {
  const lock = createReadWriteLock();
  const order: string[] = [];
  const g = gate();
  const first = lock.shared(async () => {
    await g.opened;
    order.push('first shared');
  });
  const exclusive = lock.exclusive(async () => {
    order.push('exclusive');
  });
  const later = Array.from({ length: 20 }, (_, i) => lock.shared(async () => order.push(`later ${i}`)));
  await settle();
  t.same(order, [], 'nothing after the exclusive task ran while the first shared one holds the lock');
  g.open();
  await Promise.all([first, exclusive, ...later]);
  t.same(order.slice(0, 2), ['first shared', 'exclusive']);
  t.equal(order.length, 22);
});
