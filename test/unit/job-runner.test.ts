/** JobRunner.start: each job runs once soon after the start, then on its interval; stop() ends the timers. */
import type { FastifyBaseLogger } from 'fastify';
import t from 'tap';
import { JobRunner, type Job } from '../../src/jobs/job-runner.ts';

const quiet = { child: () => quiet, info: () => undefined, error: () => undefined } as unknown as FastifyBaseLogger;
const counters = { jobRuns: { inc: () => undefined }, jobFailures: { inc: () => undefined } } as never;

t.test('an hourly job runs once shortly after the start, not an hour later', async (t) => {
  const runs: string[] = [];
  const job = (name: string): Job => ({ name, intervalSeconds: 3600, run: async () => (runs.push(name), undefined) });
  const runner = new JobRunner([job('hourly-a'), job('hourly-b')], () => new Date(), quiet, counters);
  t.teardown(() => runner.stop());
  runner.start(20);
  for (let waited = 0; runs.length < 2 && waited < 10_000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
  t.same([...runs].sort(), ['hourly-a', 'hourly-b'], 'each ran once');
  await runner.stop();
  t.same([...runs].sort(), ['hourly-a', 'hourly-b'], 'and not again');
});
