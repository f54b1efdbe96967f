/**
 * Where the CSRs' signatures are checked: on a worker thread when the server is busy, in place when it is quiet.
 *
 * A P-256 check (key import and verification, ~0.1 ms) was a third of the event loop's time per certificate at 16
 * requests in flight. A turn's checks go to the worker as one message, which it answers as one: the event loop keeps
 * the rest of the request's work, and a busy server issues 11 % more at 16 in flight, 47 % more at 128
 * (bench/issue/RESULTS.md). Handing a check over costs a lone request more CPU than it saves (two thread wake-ups),
 * so while the server is quiet (no turn has checked several CSRs for a second) a turn's first check is made in place.
 * On Lambda, one request at a time, the worker never starts.
 */
import { Worker } from 'node:worker_threads';
import { runSignatureCheck, type SignatureCheck } from '../x509/public-key.ts';

/**
 * The worker runs runSignatureCheck's two OpenSSL calls on each check of a message and answers one byte per check
 * (1: valid). Inline source, CommonJS or ES module alike: it runs the same from tsx, tsc's output and the Lambda bundle.
 */
const WORKER_SOURCE = `
const { createPublicKey, verify } = process.getBuiltinModule('node:crypto');
const { parentPort } = process.getBuiltinModule('node:worker_threads');
parentPort.on('message', (checks) => {
  const valid = new Uint8Array(checks.length);
  for (let i = 0; i < checks.length; i++) {
    const { keyPem, hash, data, signature } = checks[i];
    try {
      valid[i] = verify(hash, data, createPublicKey(keyPem), signature) ? 1 : 0;
    } catch {
      valid[i] = 0;
    }
  }
  parentPort.postMessage(valid);
});
`;

interface Batch {
  checks: SignatureCheck[];
  answer: ((valid: boolean) => void)[];
}

function settle(batch: Batch, valid: (check: SignatureCheck, index: number) => boolean): void {
  for (let i = 0; i < batch.checks.length; i++) batch.answer[i]!(valid(batch.checks[i]!, i));
}

export interface SignatureVerifier {
  verify(check: SignatureCheck): Promise<boolean>;
  /** Stops the worker; checks it held are answered in place. */
  close(): Promise<void>;
}

/** How long a turn that checked several CSRs counts the server as busy. */
const BUSY_FOR_MS = 1000;
/**
 * After a worker fails, checks are made in place and no worker starts for this long, doubled for each failure in a
 * row (up to the maximum): a worker that failed on every message would otherwise start (and be logged) again on
 * every busy turn. A worker that answers ends the run of failures.
 */
export const WORKER_RESTART_AFTER_MS = 1000;
export const MAX_WORKER_RESTART_AFTER_MS = 60_000;

export interface SignatureVerifierOptions {
  /** A monotonic clock in milliseconds (tests drive their own). */
  now?: () => number;
  /** Told of each worker that fails (its checks are then made in place); the services count and log it. */
  onWorkerFailure?: (error: unknown) => void;
  /** The worker's source (tests give one that fails). */
  workerSource?: string;
}

export function createSignatureVerifier({
  now = () => performance.now(),
  onWorkerFailure,
  workerSource = WORKER_SOURCE,
}: SignatureVerifierOptions = {}): SignatureVerifier {
  let worker: Worker | undefined;
  /** Sent and not yet answered, oldest first: the worker answers messages in order. */
  const sent: Batch[] = [];
  let turn: Batch | undefined;
  let checkedThisTurn = 0;
  let busyUntil = Number.NEGATIVE_INFINITY;
  let failuresInARow = 0;
  let noWorkerUntil = Number.NEGATIVE_INFINITY;
  let closed = false;

  function startWorker(): Worker {
    const started = new Worker(workerSource, { eval: true, execArgv: [] });
    started.unref(); // an idle worker must not keep a process alive
    started.on('message', (valid: Uint8Array) => {
      failuresInARow = 0;
      const batch = sent.shift();
      if (batch) settle(batch, (_, i) => valid[i] === 1);
    });
    // A worker that fails or is stopped leaves its checks to this thread (its exit follows); a later busy turn starts
    // another once the failure's back-off has passed.
    started.on('error', (error) => {
      failuresInARow++;
      noWorkerUntil = now() + Math.min(WORKER_RESTART_AFTER_MS * 2 ** (failuresInARow - 1), MAX_WORKER_RESTART_AFTER_MS);
      onWorkerFailure?.(error);
    });
    started.on('exit', () => {
      if (worker === started) worker = undefined;
      for (const batch of sent.splice(0)) settle(batch, runSignatureCheck);
    });
    return started;
  }

  function endTurn(): void {
    if (checkedThisTurn > 1) busyUntil = now() + BUSY_FOR_MS;
    checkedThisTurn = 0;
    const batch = turn;
    turn = undefined;
    if (batch === undefined) return;
    if (closed || (worker === undefined && now() < noWorkerUntil)) {
      settle(batch, runSignatureCheck); // never a worker after close, nor a new one while backing off
      return;
    }
    worker ??= startWorker();
    sent.push(batch);
    // Copies: a view would carry its whole buffer (a PEM's decoded slab) across.
    worker.postMessage(batch.checks.map((check) => ({ ...check, data: check.data.slice(), signature: check.signature.slice() })));
  }

  return {
    async verify(check) {
      if (closed) return runSignatureCheck(check);
      if (checkedThisTurn++ === 0) {
        setImmediate(endTurn);
        if (now() >= busyUntil) return runSignatureCheck(check);
      }
      turn ??= { checks: [], answer: [] };
      const batch = turn;
      return new Promise<boolean>((resolve) => {
        batch.checks.push(check);
        batch.answer.push(resolve);
      });
    },

    async close() {
      closed = true;
      await worker?.terminate();
    },
  };
}
