/**
 * Lambda cold start, as the deployed bundle has it: `scripts/bundle-lambda.mjs`, then for each run a fresh Node
 * process imports dist/lambda/http.mjs (init: load the code, build the app, reach the database) and serves HTTP API
 * events in-process: first a certificate issued from an existing subordinate, then root → subordinate → issue →
 * export. The jobs and migrate entries' init is timed the same way. Median of 5 runs (BENCH_RUNS).
 * Postgres: DATABASE_URL's server, else a throwaway cluster.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createEmptyDatabase, dropDatabase, realPostgres } from '../../test/helpers/database.ts';
import { deployedFunctionEnv } from '../../test/helpers/lambda.ts';
import { TEST_NODE_ENV } from '../../test/helpers/server-process.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const BUNDLE = path.join(REPO, 'dist/lambda');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// BENCH_BEFORE: the dist/lambda folder of another build (say, the commit before a change), run interleaved with this
// one's so that both see the same machine load. BENCH_CPU_PROF: a folder for V8 CPU profiles of the HTTP runs.
const BEFORE = process.env.BENCH_BEFORE;
const cpuProf = (build: string) =>
  process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF, build)}`] : [];

await run(process.execPath, [path.join(REPO, 'scripts/bundle-lambda.mjs')]);
const postgres = await realPostgres();
const databaseUrl = await createEmptyDatabase(postgres.url);
const { env, authorization } = deployedFunctionEnv({
  databaseUrl,
  publicBaseUrl: 'https://pca.bench.internal',
  LOG_LEVEL: 'warn',
  ...TEST_NODE_ENV,
});

/** Runs `body` in a fresh Node process in `/`; it prints one JSON line of figures (ms since process start). */
async function fresh(body: string, nodeArgs: string[] = []): Promise<Record<string, number | string>> {
  const { stdout } = await run(process.execPath, [...nodeArgs, '--input-type=module', '-e', body], {
    cwd: '/',
    env,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number | string>;
}

// Time this thread spent on a CPU, in ms (the scheduler's nanoseconds; /proc/thread-self/stat counts 10 ms ticks).
const MAIN_THREAD_CPU = "Number((await import('node:fs')).readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6";

const httpRun = (subId: string, bundle = BUNDLE) => `
  const { handler } = await import(${JSON.stringify(path.join(bundle, 'http.mjs'))});
  const initDone = performance.now();
  const initCpu = ${MAIN_THREAD_CPU};
  const mark = (name) => performance.getEntriesByName(name)[0].startTime;
  const call = async (method, url, body) => {
    const event = { version: '2.0', routeKey: '$default', rawPath: url, rawQueryString: '', isBase64Encoded: false,
      headers: { host: 'pca.bench.internal', authorization: ${JSON.stringify(authorization)}, 'content-type': 'application/json' },
      requestContext: { http: { method, path: url, sourceIp: '192.0.2.1' }, requestId: String(Math.random()) },
      body: body === undefined ? undefined : JSON.stringify(body) };
    const result = await handler(event, {});
    if (result.statusCode >= 300) throw new Error(url + ': ' + result.statusCode + ' ' + result.body);
    return result.body ? JSON.parse(result.body) : {};
  };
  const dn = (cn) => ({ common_name: cn, country: 'CN', state: 'zj', locality: 'hz', organization: 'bench', organizational_unit: 'ou' });
  const leaf = (issuer_id) => ({ issuer_id, key_algorithm: 'EC256', signature_algorithm: 'SHA256', distinguished_name: { common_name: 'cold.bench.internal' }, validity: { type: 'DAY', value: 30 } });
  const figures = { imported: mark('pca:imported'), built: mark('pca:built'), ready: mark('pca:ready'), init: initDone, initCpu };
  let subId = ${JSON.stringify(subId)};
  if (subId) {
    await call('POST', '/v1/private-certificates', leaf(subId));
    figures.firstIssued = performance.now();
    // The main thread's CPU time: what a loaded machine inflates least.
    figures.firstIssuedCpu = ${MAIN_THREAD_CPU};
  }
  const started = performance.now();
  const { ca_id: rootId } = await call('POST', '/v1/private-certificate-authorities', { type: 'ROOT', distinguished_name: dn('cold-root'), key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 2 } });
  ({ ca_id: subId } = await call('POST', '/v1/private-certificate-authorities', { type: 'SUBORDINATE', issuer_id: rootId, distinguished_name: dn('cold-sub'), key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 1 } }));
  const { certificate_id } = await call('POST', '/v1/private-certificates', leaf(subId));
  await call('POST', '/v1/private-certificates/' + certificate_id + '/export', { is_compressed: 'false', type: 'OTHER' });
  figures.sequence = performance.now() - started;
  console.log(JSON.stringify({ ...figures, subId }));
  process.exit(0);`;

const entryInit = (entry: string, event: string) => `
  const { handler } = await import(${JSON.stringify(path.join(BUNDLE, `${entry}.mjs`))});
  const init = performance.now();
  await handler(${event}, {});
  console.log(JSON.stringify({ init, done: performance.now() }));
  process.exit(0);`;

// Peers, in the same run: a minimal fastify app (import, one route, ready, one inject) and a bare pg client's
// connect and first query, both from this repository's node_modules.
const resolveHere = (name: string) => JSON.stringify(import.meta.resolve(name));
const fastifyPeer = `
  const { default: Fastify } = await import(${resolveHere('fastify')});
  const app = Fastify();
  app.get('/', async () => ({ ok: true }));
  await app.ready();
  await app.inject({ method: 'GET', url: '/' });
  console.log(JSON.stringify({ done: performance.now(), cpu: ${MAIN_THREAD_CPU} }));
  process.exit(0);`;
const pgPeer = `
  const { default: pg } = await import(${resolveHere('pg')});
  const client = new pg.Client(${JSON.stringify(databaseUrl)});
  await client.connect();
  await client.query('SELECT 1');
  console.log(JSON.stringify({ done: performance.now() }));
  process.exit(0);`;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const ms = (value: number) => `${Math.round(value)} ms`;

try {
  await fresh(entryInit('migrate', '{}'));
  const { subId } = await fresh(httpRun(''));
  const runs: Record<string, number | string>[] = [];
  const befores: Record<string, number | string>[] = [];
  const jobs: Record<string, number | string>[] = [];
  const migrations: Record<string, number | string>[] = [];
  const fastifyPeers: Record<string, number | string>[] = [];
  const pgPeers: Record<string, number | string>[] = [];
  for (let index = 0; index < RUNS; index++) {
    if (BEFORE) befores.push(await fresh(httpRun(String(subId), BEFORE), cpuProf('before')));
    runs.push(await fresh(httpRun(String(subId)), cpuProf('after')));
    jobs.push(await fresh(entryInit('jobs', '{"job":"crl-refresh"}')));
    migrations.push(await fresh(entryInit('migrate', '{}')));
    fastifyPeers.push(await fresh(fastifyPeer));
    pgPeers.push(await fresh(pgPeer));
  }
  const of = (rows: Record<string, number | string>[], key: string) => median(rows.map((row) => Number(row[key])));
  const rows: [string, number][] = [
    ['node start → bundle imported', of(runs, 'imported')],
    ['app built (config, pool, key stores, routes)', of(runs, 'built') - of(runs, 'imported')],
    ['ready + first database query', of(runs, 'ready') - of(runs, 'built')],
    ['**init total** (process start → handler exported)', of(runs, 'init')],
    ['first request: issue a certificate (Prisma compiler, transaction, signing)', of(runs, 'firstIssued') - of(runs, 'init')],
    ['**process start → first issued certificate**', of(runs, 'firstIssued')],
    ['main-thread CPU time, process start → first issued certificate', of(runs, 'firstIssuedCpu')],
    ['of which the init (process start → handler exported)', of(runs, 'initCpu')],
    ['then root → subordinate → issue → export, same process', of(runs, 'sequence')],
    ['jobs entry: process start → init', of(jobs, 'init')],
    ['jobs entry: process start → crl-refresh done', of(jobs, 'done')],
    ['migrate entry: process start → init', of(migrations, 'init')],
    ['migrate entry: process start → up to date', of(migrations, 'done')],
    ['peer: minimal fastify app, process start → first response', of(fastifyPeers, 'done')],
    ['peer: minimal fastify app, its main-thread CPU time', of(fastifyPeers, 'cpu')],
    ['peer: bare pg client, process start → first query', of(pgPeers, 'done')],
  ];
  console.log(
    `Node ${process.version}, load average ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}, ${RUNS} fresh processes each, medians:\n`,
  );
  console.log('| Step | Median |\n|---|---|');
  for (const [name, value] of rows) console.log(`| ${name} | ${ms(value)} |`);
  console.log(
    `\nfirst issued certificate / minimal fastify app: ${(of(runs, 'firstIssued') / of(fastifyPeers, 'done')).toFixed(2)} (wall), ${(of(runs, 'firstIssuedCpu') / of(fastifyPeers, 'cpu')).toFixed(2)} (main-thread CPU)`,
  );
  console.log(`\nprocess start → first issued certificate, every run: ${runs.map((row) => ms(Number(row.firstIssued))).join(', ')}`);
  if (BEFORE) {
    console.log(`\nInterleaved with ${BEFORE}, medians:\n\n| Step | Before | After |\n|---|---|---|`);
    const steps: [string, (rows: Record<string, number | string>[]) => number][] = [
      ['bundle imported', (rows) => of(rows, 'imported')],
      ['app built', (rows) => of(rows, 'built') - of(rows, 'imported')],
      ['ready + first database query', (rows) => of(rows, 'ready') - of(rows, 'built')],
      ['first request', (rows) => of(rows, 'firstIssued') - of(rows, 'init')],
      ['**process start → first issued certificate**', (rows) => of(rows, 'firstIssued')],
      ['main-thread CPU time, process start → first issued certificate', (rows) => of(rows, 'firstIssuedCpu')],
      ['of which the init', (rows) => of(rows, 'initCpu')],
      ['then root → subordinate → issue → export', (rows) => of(rows, 'sequence')],
    ];
    for (const [name, step] of steps) console.log(`| ${name} | ${ms(step(befores))} | ${ms(step(runs))} |`);
    const least = (rows: Record<string, number | string>[], key: string) => ms(Math.min(...rows.map((row) => Number(row[key]))));
    console.log(
      `| least of the runs: first issued certificate / main-thread CPU | ${least(befores, 'firstIssued')} / ${least(befores, 'firstIssuedCpu')} | ${least(runs, 'firstIssued')} / ${least(runs, 'firstIssuedCpu')} |`,
    );
    console.log(`\nbefore, every run: ${befores.map((row) => ms(Number(row.firstIssued))).join(', ')}`);
  }
} finally {
  await dropDatabase(postgres.url, databaseUrl);
  await postgres.stop();
}
