/**
 * The server's primary process when WORKERS > 1: it forks the workers (node:cluster hands them connections on the
 * one listening port), starts a new worker in place of one that dies, and on SIGTERM or SIGINT stops them all and
 * exits. It loads no app, database or key store of its own.
 */
import cluster, { type Worker } from 'node:cluster';

/** The worker's index (0 to WORKERS - 1) in its environment; the one with index 0 runs the scheduled jobs. */
export const WORKER_INDEX_VARIABLE = 'PCA_WORKER_INDEX';

export function isLeadWorker(): boolean {
  return !cluster.isWorker || process.env[WORKER_INDEX_VARIABLE] === '0';
}

export function superviseWorkers(count: number): void {
  const live = new Set<Worker>();
  let stopping = false;
  let exitCode = 0;
  const say = (message: string) => process.stderr.write(`[primary ${process.pid}] ${message}\n`);

  /** `replacing`: the pid of the dead worker this one takes over from. */
  function fork(index: number, replacing?: number): void {
    const worker = cluster.fork({ [WORKER_INDEX_VARIABLE]: String(index) });
    live.add(worker);
    let listening = false;
    worker.once('listening', () => {
      listening = true;
      say(`worker ${index} (pid ${worker.process.pid}) listening${replacing ? ` in place of pid ${replacing}` : ''}`);
    });
    worker.once('exit', (code, signal) => {
      live.delete(worker);
      if (stopping) {
        if (live.size === 0) process.exit(exitCode);
        return;
      }
      const how = signal ?? `code ${code}`;
      if (!listening) {
        // Dead before serving (configuration, database, key store): another would die the same way.
        say(`worker ${index} (pid ${worker.process.pid}) exited (${how}) before it listened; stopping`);
        stop(1);
        return;
      }
      say(`worker ${index} (pid ${worker.process.pid}) exited (${how}); starting another`);
      fork(index, worker.process.pid);
    });
  }

  function stop(code: number): void {
    exitCode ||= code;
    if (stopping) return;
    stopping = true;
    for (const worker of live) worker.process.kill('SIGTERM');
    if (live.size === 0) process.exit(exitCode);
  }
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  for (let index = 0; index < count; index++) fork(index);
}
