/** serverless.yml declares one scheduled function for every job the app runs, and handlers that exist. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import * as lambda from '../../src/lambda.ts';
import { createTestApp } from '../helpers/app.ts';

interface ServerlessFunction {
  handler: string;
  events?: { schedule?: { rate: string; input?: { job?: string } }; httpApi?: unknown }[];
}
const manifest = parse(readFileSync('serverless.yml', 'utf8')) as { functions: Record<string, ServerlessFunction> };

t.test('every job has exactly one scheduled function, and nothing else is scheduled', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const scheduled = Object.values(manifest.functions)
    .flatMap((fn) => fn.events ?? [])
    .flatMap((event) => (event.schedule ? [event.schedule.input?.job] : []));
  const jobs = harness.app.jobRunner.jobs.map((job) => job.name);
  t.ok(jobs.length > 0, 'the app has jobs');
  t.same([...scheduled].sort(), [...jobs].sort());
});

t.test('every handler named in serverless.yml is exported by src/lambda.ts', async (t) => {
  for (const [name, fn] of Object.entries(manifest.functions)) {
    const [file, exported] = fn.handler.split(/\.(?=[^.]+$)/);
    t.equal(file, 'dist/src/lambda', `${name} uses the built lambda module`);
    t.type((lambda as Record<string, unknown>)[exported], 'function', `${name}: ${exported} is exported`);
  }
});
