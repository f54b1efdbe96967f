/**
 * Scheduled jobs (deletion finalizer, expiry marker, CRL refresh, billing settlement, ...) behind one interface.
 * On Lambda each job is its own scheduled function (src/lambda.ts); in server mode they run here on timers.
 * Jobs must be safe to run twice or on two instances at once: each guards itself in the database
 * (advisory locks, unique keys), the runner only avoids overlapping runs inside one process.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Metrics } from '../metrics/metrics.ts';

export interface JobContext {
  now: Date;
  log: FastifyBaseLogger;
}

export interface Job {
  readonly name: string;
  /** How often server mode runs it; serverless.yml carries the same schedule for Lambda. */
  readonly intervalSeconds: number;
  run(context: JobContext): Promise<Record<string, unknown> | undefined>;
}

export class JobRunner {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(
    readonly jobs: readonly Job[],
    private readonly now: () => Date,
    private readonly log: FastifyBaseLogger,
    private readonly metrics: Pick<Metrics, 'jobRuns' | 'jobFailures'>,
  ) {}

  job(name: string): Job {
    const job = this.jobs.find((candidate) => candidate.name === name);
    if (!job) throw new Error(`unknown job '${name}'; known: ${this.jobs.map((j) => j.name).join(', ')}`);
    return job;
  }

  /** Runs one job now; a run already in progress in this process is joined rather than started twice. */
  async runOnce(name: string): Promise<Record<string, unknown> | undefined> {
    const inFlight = this.running.get(name);
    if (inFlight) return (await inFlight) as Record<string, unknown> | undefined;
    const job = this.job(name);
    const log = this.log.child({ job: name });
    const started = performance.now();
    this.metrics.jobRuns.inc({ job: name });
    const run = job
      .run({ now: this.now(), log })
      .catch((error: unknown) => {
        this.metrics.jobFailures.inc({ job: name });
        throw error;
      })
      .finally(() => this.running.delete(name));
    this.running.set(name, run);
    const result = await run;
    log.info({ ...(result ?? {}), durationMs: Math.round(performance.now() - started) }, 'job finished');
    return result;
  }

  /**
   * Server mode: every job once shortly after the start (`firstRunAfterMs`), then on its own interval; failures are
   * logged and retried at the next tick. Without the first run a server restarted more often than an interval (an
   * hour for prepaid renewal) never ran that job.
   */
  start(firstRunAfterMs = 10_000): void {
    for (const job of this.jobs) {
      const tick = () => {
        this.runOnce(job.name).catch((error: unknown) => this.log.error({ err: error, job: job.name }, 'job failed'));
      };
      const first = setTimeout(
        () => {
          tick();
          const timer = setInterval(tick, job.intervalSeconds * 1000);
          timer.unref();
          this.timers.push(timer);
        },
        Math.min(firstRunAfterMs, job.intervalSeconds * 1000),
      );
      first.unref();
      this.timers.push(first);
    }
  }

  async stop(): Promise<void> {
    for (const timer of this.timers.splice(0)) clearTimeout(timer); // a first run's timeout or an interval alike
    await Promise.allSettled(this.running.values());
  }
}
