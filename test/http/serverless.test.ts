/** serverless.yml declares one scheduled function for every job the app runs, and handlers that exist. */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
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

// Importing an entry builds its deployment at init, so the source is read here; the packaged-bundle test imports them.
t.test('every handler named in serverless.yml is exported by an entry module in src/lambda/', async (t) => {
  for (const [name, fn] of Object.entries(manifest.functions)) {
    const [file, exported] = fn.handler.split(/\.(?=[^.]+$)/) as [string, string];
    const entry = /^dist\/lambda\/(http|jobs|migrate)$/.exec(file)?.[1];
    t.ok(entry, `${name} uses a bundled entry module (${file})`);
    const source = readFileSync(`src/lambda/${entry}.ts`, 'utf8');
    t.match(source, new RegExp(`^export (const|async function) ${exported}\\b`, 'm'), `${name}: ${exported} is exported`);
  }
});
