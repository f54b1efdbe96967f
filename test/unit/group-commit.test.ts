/** The group committer (src/db/group-commit.ts) without a database: batching, limits, failure and freshness. */
import t from 'tap';
import { createGroupCommitter, createStatementBatcher, type Pending } from '../../src/db/group-commit.ts';

/** A writer whose batches stay open until released, recording what each held and how many ran at once. */
function heldWriter() {
  const batches: number[][] = [];
  const open: (() => void)[] = [];
  let running = 0;
  let mostRunning = 0;
  const write = (batch: Pending<number, number>[]) => {
    batches.push(batch.map((pending) => pending.item));
    running++;
    mostRunning = Math.max(mostRunning, running);
    return new Promise<void>((resolve) => {
      open.push(() => {
        running--;
        for (const pending of batch) pending.resolve(pending.item * 10);
        resolve();
      });
    });
  };
  /** Releases every open batch, and the batches that follow them, until none is left open. */
  const releaseAll = async () => {
    do {
      for (const release of open.splice(0)) release();
      // The next batch is sent from the settled batch's finally (a microtask) on the following turn.
      for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    } while (open.length > 0);
  };
  return { write, batches, open, releaseAll, mostRunning: () => mostRunning };
}

t.test('next-turn: one turn of requests is one batch, split at maxBatch, at most maxInFlight at once', async (t) => {
  const writer = heldWriter();
  const submit = createGroupCommitter(writer.write, { maxBatch: 3, maxInFlight: 2, send: 'next-turn' });
  const answers = Promise.all([1, 2, 3, 4, 5, 6, 7].map(submit));
  t.same(writer.batches, [], 'nothing is written in the turn the requests arrive');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(
    writer.batches,
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
    'two batches of at most 3 in flight; the seventh waits',
  );
  await writer.releaseAll();
  t.same(writer.batches, [[1, 2, 3], [4, 5, 6], [7]]);
  t.equal(writer.mostRunning(), 2);
  t.same(await answers, [10, 20, 30, 40, 50, 60, 70], 'each request gets its own answer');
});

t.test('now: a request meeting a free slot is sent at once; later ones join the next batch only', async (t) => {
  const writer = heldWriter();
  const submit = createGroupCommitter(writer.write, { maxBatch: 100, maxInFlight: 1, send: 'now' });
  const first = submit(1);
  t.same(writer.batches, [[1]], 'sent before submit returned');
  const later = [submit(2), submit(3)];
  t.same(writer.batches, [[1]], 'queued behind the batch in flight, never added to it');
  await writer.releaseAll();
  t.same(writer.batches, [[1], [2, 3]]);
  t.same(await Promise.all([first, ...later]), [10, 20, 30]);
});

t.test('a failed write rejects every request of its batch and the committer goes on', async (t) => {
  let calls = 0;
  const submit = createGroupCommitter<number, number>(
    async (batch) => {
      calls++;
      if (calls === 1) throw new Error('connection lost');
      for (const pending of batch) pending.resolve(pending.item);
    },
    { maxBatch: 10, maxInFlight: 1, send: 'next-turn' },
  );
  const failed = await Promise.allSettled([submit(1), submit(2)]);
  t.same(
    failed.map((outcome) => outcome.status),
    ['rejected', 'rejected'],
  );
  t.equal(await submit(3), 3);
});

t.test('the statement batcher answers each item with the result at its index', async (t) => {
  const sent: string[][] = [];
  const lookUp = createStatementBatcher(
    async (items: string[]) => {
      sent.push(items);
      return items.map((item) => item.toUpperCase());
    },
    { maxInFlight: 1, send: 'now' },
  );
  t.same(await Promise.all(['a', 'b', 'c'].map(lookUp)), ['A', 'B', 'C']);
  t.same(sent, [['a'], ['b', 'c']], 'the first at once, the two behind it together');
});
