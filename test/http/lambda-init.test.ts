/**
 * The Lambda entries fail at init with one clear error rather than on every request, migrate from any working
 * directory with nothing but the database URL, and size the pool for one request at a time.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import t from 'tap';
import { LAMBDA_POOL_SIZE, loadConfig, QUERY_WAIT_MS, SERVER_POOL_SIZE } from '../../src/config.ts';
import { emptyRealDatabaseOrSkipTest } from '../helpers/database.ts';
import { apiGatewayEvent } from '../helpers/lambda.ts';
import { pretendNode, TEST_NODE_ENV } from '../helpers/server-process.ts';

const run = promisify(execFile);
const tsx = import.meta.resolve('tsx');
const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const production = {
  NODE_ENV: 'production',
  MASTER_KEY: randomBytes(32).toString('base64'),
  JWT_PRIVATE_KEY: jwt.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  JWT_PUBLIC_KEY: jwt.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  PUBLIC_BASE_URL: 'https://pca.corp.internal',
  DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
};

/** Imports an entry module in a fresh process started in `/`, as Lambda's runtime does, and calls its handler. */
async function invokeEntry(entry: string, env: Record<string, string | undefined>, event: unknown = {}, nodeArgs: string[] = []) {
  const module = fileURLToPath(new URL(`../../src/lambda/${entry}.ts`, import.meta.url));
  const script = `const m = await import(${JSON.stringify(module)}); console.log(JSON.stringify(await m.handler(${JSON.stringify(event)}, {})));`;
  const childEnv = { PATH: process.env.PATH, ...TEST_NODE_ENV, ...env } as NodeJS.ProcessEnv;
  return run(process.execPath, [...nodeArgs, '--import', tsx, '--input-type=module', '-e', script], { cwd: '/', env: childEnv }).then(
    ({ stdout }) => ({ ok: true, stdout, stderr: '' }),
    (error: { stdout: string; stderr: string }) => ({ ok: false, stdout: error.stdout, stderr: error.stderr }),
  );
}

t.test('the HTTP and job functions refuse to start on a bad configuration, naming it', async (t) => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['no database', { ...production, DATABASE_URL: undefined }, /DATABASE_URL is required on Lambda/],
    ['no public URL', { ...production, PUBLIC_BASE_URL: undefined }, /NODE_ENV=production requires PUBLIC_BASE_URL/],
    [
      'a placeholder public URL',
      { ...production, PUBLIC_BASE_URL: 'https://pca.example.com' },
      /PUBLIC_BASE_URL to be this deployment's public address/,
    ],
    ['a bad master key', { ...production, MASTER_KEY: 'c2hvcnQ=' }, /MASTER_KEY must be 32 bytes/],
  ];
  for (const entry of ['http', 'jobs']) {
    for (const [name, env, message] of cases) {
      const result = await invokeEntry(entry, env, { job: 'ca-expiry' });
      t.notOk(result.ok, `${entry}, ${name}: init fails`);
      t.match(result.stderr, message, `${entry}, ${name}: says why`);
    }
  }
});

t.test('every function refuses to start on an unsupported Node, naming the supported lines, unless told to start anyway', async (t) => {
  for (const entry of ['http', 'jobs', 'migrate']) {
    const refused = await invokeEntry(
      entry,
      { ...production, ALLOW_UNSUPPORTED_NODE: undefined },
      { job: 'ca-expiry' },
      pretendNode('20.20.2'),
    );
    t.notOk(refused.ok, `${entry}: init fails on Node 20`);
    t.match(
      refused.stderr,
      /Node\.js 20\.20\.2 is not supported: this service runs on Node\.js \^22\.13\.0 \|\| \^24\.0\.0 \|\| \^26\.0\.0/,
      `${entry}: says why`,
    );
    // Let through, it reads its configuration next, and a bad setting stops it there.
    const allowed = await invokeEntry(
      entry,
      { ...production, ALLOW_UNSUPPORTED_NODE: '1', MASTER_KEY: 'c2hvcnQ=', DATABASE_URL: 'mysql://x' },
      { job: 'ca-expiry' },
      pretendNode('20.20.2'),
    );
    t.notOk(allowed.ok);
    t.match(allowed.stderr, /Warning: Node\.js 20\.20\.2 is not supported.*starting anyway/, `${entry}: ALLOW_UNSUPPORTED_NODE=1 warns`);
    t.match(
      allowed.stderr,
      entry === 'migrate' ? /DATABASE_URL must be a postgres/ : /MASTER_KEY must be 32 bytes/,
      `${entry}: then reads its configuration`,
    );
  }
});

t.test('placeholder hosts and loopback addresses are refused only in production', async (t) => {
  const urls = ['https://example.com', 'https://pca.example.org', 'http://ca.test', 'https://x.invalid', 'http://localhost:8080'];
  // No relying party reaches these: loopback and "any address", in every spelling a URL accepts.
  const loopback = ['http://127.0.0.1:8080', 'https://127.3.2.1', 'http://2130706433/', 'http://[::1]:8080', 'http://[::ffff:127.0.0.1]/'];
  const unspecified = ['http://0.0.0.0:8080', 'http://[::]/'];
  // A trailing dot names the same host.
  for (const url of [...urls, ...loopback, ...unspecified, 'https://pca.example.com.', 'http://localhost.:8080']) {
    t.throws(() => loadConfig({ ...production, PUBLIC_BASE_URL: url }), /public address/, url);
    t.doesNotThrow(() => loadConfig({ ...production, NODE_ENV: 'development', PUBLIC_BASE_URL: url }), `${url} in development`);
  }
  t.doesNotThrow(
    () => loadConfig({ ...production, PUBLIC_BASE_URL: 'https://pca.examples.com' }),
    'a real host that merely contains "example"',
  );
  for (const url of ['http://10.0.0.7:8080', 'https://[fd00::7]/', 'http://172.16.4.2', 'https://192.168.1.20']) {
    t.doesNotThrow(() => loadConfig({ ...production, PUBLIC_BASE_URL: url }), `${url}: a private network address is a private CA's own`);
  }
});

t.test('the pool holds two connections on Lambda, ten on the server, unless DATABASE_POOL_SIZE says otherwise', async (t) => {
  t.equal(loadConfig(production, 'lambda').databasePoolSize, LAMBDA_POOL_SIZE);
  t.equal(LAMBDA_POOL_SIZE, 2);
  t.equal(loadConfig(production).databasePoolSize, SERVER_POOL_SIZE);
  t.equal(loadConfig({ ...production, DATABASE_POOL_SIZE: '5' }, 'lambda').databasePoolSize, 5);
});

t.test('a query waits 20 s for its answer, under the 29 s function timeout, unless DATABASE_QUERY_TIMEOUT_MS says otherwise', async (t) => {
  t.equal(loadConfig(production, 'lambda').databaseQueryWaitMs, QUERY_WAIT_MS);
  t.equal(QUERY_WAIT_MS, 20_000);
  t.equal(loadConfig({ ...production, DATABASE_QUERY_TIMEOUT_MS: '45000' }).databaseQueryWaitMs, 45_000);
  for (const value of ['999', '1.5', 'soon']) {
    t.throws(() => loadConfig({ ...production, DATABASE_QUERY_TIMEOUT_MS: value }), /DATABASE_QUERY_TIMEOUT_MS must be an integer/, value);
  }
});

t.test('migrate: from /, with only DATABASE_URL, applies every migration; without it, says so; the HTTP function needs them', async (t) => {
  const url = await emptyRealDatabaseOrSkipTest(t);
  if (!url) return;

  const ready = apiGatewayEvent('2.0', { method: 'GET', path: '/ready', headers: { host: 'pca.corp.internal' } });
  const early = await invokeEntry('http', { ...production, DATABASE_URL: url }, ready);
  t.notOk(early.ok, 'the HTTP function does not start on a database without the migrations');
  t.match(early.stderr, /the database lacks \d+ migration\(s\) of this version \(\d+_init, .*\): apply them first .*migrate function/);

  const first = await invokeEntry('migrate', { DATABASE_URL: url });
  t.ok(first.ok, first.stderr);
  const started = await invokeEntry('http', { ...production, DATABASE_URL: url }, ready);
  t.match(started.stdout, /"statusCode":200/, `then it starts: ${started.stderr.slice(0, 300)}`);
  const applied = (JSON.parse(first.stdout.trim().split('\n').at(-1)!) as { applied: string[] }).applied;
  t.ok(applied.length >= 3 && applied[0]!.endsWith('_init'), `applied ${applied.join(', ')}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query("SELECT to_regclass('certificate_authorities') IS NOT NULL AS present");
  await client.end();
  t.ok(rows[0].present, 'the tables exist');
  const second = await invokeEntry('migrate', { DATABASE_URL: url });
  t.same(JSON.parse(second.stdout.trim().split('\n').at(-1)!), { applied: [] }, 'a second run applies nothing');

  const missing = await invokeEntry('migrate', {});
  t.notOk(missing.ok);
  t.match(missing.stderr, /DATABASE_URL is required to migrate/);
});
