/**
 * The server's primary process when WORKERS > 1: it forks the workers (node:cluster hands them connections on the
 * one listening port), starts a new worker in place of one that dies, and on SIGTERM or SIGINT stops them all and
 * exits. It loads no app, database or key store of its own.
 */
import cluster, { type Worker } from 'node:cluster';

/** The worker's index (0 to WORKERS - 1) in its environment; the one with index 0 runs the scheduled jobs. */
export const WORKER_INDEX_VARIABLE = 'PCA_WORKER_INDEX';

/**
 * The wait before a worker that died before listening, or within STEADY_MS of it, is started again: doubled each
 * time, up to the cap; back to the first when a worker that served longer dies.
 */
const FIRST_RETRY_MS = 1000;
const LAST_RETRY_MS = 30_000;
/**
 * A worker that dies this soon after listening (on its first requests or jobs) would likely die the same way again:
 * started again at once, it made the primary fork in a tight loop. One that served longer is replaced at once. As long
 * as the longest wait: once the waits reach it, a worker that keeps dying is started about once per 30 s at most,
 * however soon or late after listening it dies.
 */
export const STEADY_MS = LAST_RETRY_MS;

export function isLeadWorker(): boolean {
  return !cluster.isWorker || process.env[WORKER_INDEX_VARIABLE] === '0';
}

export function superviseWorkers(count: number): void {
  const live = new Set<Worker>();
  /** Workers that listen now: while none does, nothing answers, and retrying would only hide that. */
  const serving = new Set<Worker>();
  const retries = new Set<NodeJS.Timeout>();
  const retryMs = Array<number>(count).fill(FIRST_RETRY_MS);
  let stopping = false;
  let exitCode = 0;
  const say = (message: string) => process.stderr.write(`[primary ${process.pid}] ${message}\n`);

  /** `replacing`: the pid of the dead worker this one takes over from (kept across retries); none at first start. */
  function fork(index: number, replacing?: number): void {
    const worker = cluster.fork({ [WORKER_INDEX_VARIABLE]: String(index) });
    live.add(worker);
    let listenedAt: number | undefined;
    worker.once('listening', () => {
      listenedAt = performance.now();
      serving.add(worker);
      say(`worker ${index} (pid ${worker.process.pid}) listening${replacing ? ` in place of pid ${replacing}` : ''}`);
    });
    worker.once('exit', (code, signal) => {
      live.delete(worker);
      serving.delete(worker);
      if (stopping) {
        if (live.size === 0) process.exit(exitCode);
        return;
      }
      const how = signal ?? `code ${code}`;
      const died = `worker ${index} (pid ${worker.process.pid}) exited (${how})`;
      const servedMs = listenedAt === undefined ? undefined : Math.round(performance.now() - listenedAt);
      if (servedMs !== undefined && servedMs >= STEADY_MS) {
        retryMs[index] = FIRST_RETRY_MS;
        say(`${died}; starting another`);
        fork(index, worker.process.pid);
      } else if (servedMs !== undefined) {
        // Likely to die the same way (see STEADY_MS); it could start, so it is tried again even while none serves.
        retryLater(index, worker.process.pid, `${died} ${servedMs} ms after it listened`);
      } else if (replacing === undefined) {
        // Dead at first start (configuration, database, key store): another would die the same way.
        say(`${died} before it listened; stopping`);
        stop(1);
      } else if (serving.size === 0) {
        // No worker answers: exiting lets the service manager see the outage and restart the server in its own time.
        say(`${died} before it listened, and no worker is serving; stopping`);
        stop(1);
      } else {
        // The configuration has served and another worker still does, so this is likely passing (Postgres failing
        // over, restarting, out of reach): the others go on serving while this one is tried again, ever more slowly.
        retryLater(index, replacing, `${died} before it listened`);
      }
    });
  }

  function retryLater(index: number, replacing: number | undefined, died: string): void {
    const delay = retryMs[index]!;
    retryMs[index] = Math.min(delay * 2, LAST_RETRY_MS);
    say(`${died}; another in ${delay} ms`);
    const retry = setTimeout(() => {
      retries.delete(retry);
      fork(index, replacing);
    }, delay);
    retries.add(retry);
  }

  function stop(code: number): void {
    exitCode ||= code;
    if (stopping) return;
    stopping = true;
    for (const retry of retries) clearTimeout(retry);
    for (const worker of live) worker.process.kill('SIGTERM');
    if (live.size === 0) process.exit(exitCode);
  }
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  for (let index = 0; index < count; index++) fork(index);
}
