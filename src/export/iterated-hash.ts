/**
 * `rounds` applications of SHA-256 to `seed`, in a worker thread. The PKCS#12 MAC key derivation (RFC 7292 B.2)
 * iterates a hash 100,000 times; Node has no native primitive for it, and on the main thread it held the event loop
 * for ~280 ms per export. A worker per call (exports are rare, and its start-up costs the main thread little), as
 * many at once as there are cores: 50 IIS exports at once had started 40 threads and starved every other request.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { concurrencyLimit } from '../concurrency.ts';

const oneCoreEach = concurrencyLimit(availableParallelism());

// Plain JavaScript evaluated in the worker (no loader needed, in tests or from dist/ alike).
const WORKER_SOURCE = `
const { createHash } = require('node:crypto');
const { parentPort, workerData } = require('node:worker_threads');
let digest = Buffer.from(workerData.seed);
for (let round = 0; round < workerData.rounds; round++) digest = createHash('sha256').update(digest).digest();
parentPort.postMessage(new Uint8Array(digest));
`;

export function iteratedSha256(seed: Uint8Array, rounds: number): Promise<Uint8Array> {
  return oneCoreEach(() => hashInWorker(seed, rounds));
}

/** Settles when the thread has exited (it ends by itself after its one message), so its slot is free only then. */
function hashInWorker(seed: Uint8Array, rounds: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { seed, rounds } });
    let digest: Uint8Array | undefined;
    let failure: Error | undefined;
    worker.once('message', (message: Uint8Array) => (digest = message));
    worker.once('error', (error) => (failure = error));
    worker.once('exit', (code) => (digest ? resolve(digest) : reject(failure ?? new Error(`hash worker exited with code ${code}`))));
  });
}
