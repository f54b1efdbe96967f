/**
 * concurrencyLimit: never more than the limit at once, every task run, first come first served, failures free their slot;
 * and the two places it bounds (PKCS#12 hash workers, RSA key pairs) are bounded. serialPerKey: one task per key at
 * once, keys independent.
 */
import { createHash } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import t from 'tap';
import { concurrencyLimit, serialPerKey } from '../../src/concurrency.ts';
import { iteratedSha256 } from '../../src/export/iterated-hash.ts';
import { generateServerKey } from '../../src/services/certificates/server-key.ts';

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

t.test('serialPerKey: one task per key at once in arrival order, other keys unaffected, a failure passes its turn on', async (t) => {
  const serial = serialPerKey();
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  const task = (name: string) => () =>
    new Promise<string>((resolve, reject) => {
      started.push(name);
      gates.set(name, () => (name === 'a2' ? reject(new Error('a2 failed')) : resolve(name)));
    });
  const results = ['a1', 'a2', 'b1', 'a3', 'b2'].map((name) => serial(name[0], task(name)).catch((error: Error) => error.message));
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  await settle();
  t.same(started, ['a1', 'b1'], 'one task of each key runs');
  gates.get('a1')!();
  await settle();
  t.same(started, ['a1', 'b1', 'a2'], "a's next in line runs; b's second still waits for b1");
  gates.get('a2')!();
  await settle();
  t.same(started, ['a1', 'b1', 'a2', 'a3'], 'a failure passes the turn on');
  gates.get('b1')!();
  await settle();
  gates.get('a3')!();
  gates.get('b2')!();
  t.same(await Promise.all(results), ['a1', 'a2 failed', 'b1', 'a3', 'b2']);
  t.equal(await serial('a', async () => 'again'), 'again', 'a key whose queue emptied starts afresh');
});

t.test('PKCS#12 MAC derivation runs in at most one worker per core, however many exports ask at once', async (t) => {
  let live = 0;
  let most = 0;
  // Node announces every new worker thread on this channel.
  const onWorker = ({ worker }: { worker: Worker }) => {
    most = Math.max(most, ++live);
    worker.once('exit', () => live--);
  };
  subscribe('worker_threads', onWorker as (message: unknown) => void);
  t.teardown(() => unsubscribe('worker_threads', onWorker as (message: unknown) => void));
  const asks = availableParallelism() * 3;
  const seed = new Uint8Array([1, 2, 3]);
  const digests = await Promise.all(Array.from({ length: asks }, () => iteratedSha256(seed, 20_000)));
  let expected = Buffer.from(seed);
  for (let round = 0; round < 20_000; round++) expected = createHash('sha256').update(expected).digest();
  t.ok(
    digests.every((digest) => Buffer.from(digest).equals(expected)),
    `${asks} digests, all right`,
  );
  t.ok(most >= 1 && most <= availableParallelism(), `at most ${availableParallelism()} workers at once (saw ${most})`);
});

t.test('server-made RSA key pairs: two at once; EC pairs are not held back', async (t) => {
  const { subtle } = globalThis.crypto;
  const generateKey = subtle.generateKey.bind(subtle);
  let live = 0;
  const most = { RSA: 0, EC: 0 };
  subtle.generateKey = (async (algorithm: AlgorithmIdentifier, ...rest: [boolean, KeyUsage[]]) => {
    const family = (algorithm as { name: string }).name === 'ECDSA' ? 'EC' : 'RSA';
    most[family] = Math.max(most[family], ++live);
    try {
      return await generateKey(algorithm, ...rest);
    } finally {
      live--;
    }
  }) as typeof subtle.generateKey;
  t.teardown(() => {
    subtle.generateKey = generateKey;
  });
  const rsa = await Promise.all(Array.from({ length: 6 }, () => generateServerKey('RSA2048')));
  t.equal(new Set(rsa.map(({ spki }) => Buffer.from(spki).toString('hex'))).size, 6, 'six distinct RSA pairs');
  t.equal(most.RSA, 2, 'never more than two RSA pairs in the making');
  live = 0;
  await Promise.all(Array.from({ length: 6 }, () => generateServerKey('EC256')));
  t.ok(most.EC > 2, `EC pairs all at once (${most.EC})`);
});
