/** concurrencyLimit: never more than the limit at once, every task run, first come first served, failures free their slot. */
import t from 'tap';
import { concurrencyLimit } from '../../src/concurrency.ts';

t.test('at most `limit` at once, all run, in arrival order; a failure passes through and frees its slot', async (t) => {
  const limited = concurrencyLimit(3);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const task = (index: number) => () =>
    new Promise<number>((resolve, reject) => {
      started.push(index);
      most = Math.max(most, ++running);
      releases.push(() => {
        running--;
        if (index === 4) reject(new Error('task 4 failed'));
        else resolve(index);
      });
    });
  const results = Array.from({ length: 10 }, (_, index) => limited(task(index)).catch((error: Error) => error.message));
  // Release whatever runs, one at a time, until every task has been started and released.
  for (let released = 0; released < 10; released++) {
    await new Promise((resolve) => setImmediate(resolve));
    t.ok(running <= 3, `${running} running`);
    releases.shift()!();
  }
  t.same(await Promise.all(results), [0, 1, 2, 3, 'task 4 failed', 5, 6, 7, 8, 9]);
  t.equal(most, 3, 'three ran at once, never more');
  t.same(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'first come first served');
});
