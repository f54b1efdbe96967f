/**
 * The quick start, for real: `npm start`'s entry on a fresh data folder (embedded PGlite, generated development
 * secrets, no admin token in a log stream, readable logs), `npm run dev-token`, a graceful stop and a second start on the same
 * folder; and a production start (given keys, JSON logs).
 */
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { startNodePath } from '../../scripts/supported-node.mjs';
import { isSupportedNode } from '../../src/config.ts';
import { freePort } from '../helpers/database.ts';
import { pretendNode, startServerProcess, TEST_NODE_ENV } from '../helpers/server-process.ts';

const run = promisify(execFile);
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-server-'));

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// The embedded default is what the quick start exercises, even when the suite runs against Postgres.
const env = { ...process.env, ...TEST_NODE_ENV, DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', DATABASE_URL: '' };

/** What `npm start` runs: the compiled server, rebuilt first if the sources are newer. */
const startServer = (extraEnv: Record<string, string> = {}) => startServerProcess(['scripts/start.mjs'], { ...env, ...extraEnv }, 120_000);

t.test('first start on a fresh data folder', async (t) => {
  const server = await startServer();
  t.teardown(() => server.child.kill('SIGKILL'));
  t.comment(`first start answered /health after ${Math.round(server.millisToHealthy)} ms`);
  // Piped output is a log stream, not a terminal: the 24 h admin token stays out of it (issue #13 item 15).
  t.notMatch(server.output(), /PCA_TOKEN|eyJ/, 'no development admin token in a log stream');
  t.match(server.output(), /development admin token not printed: the output is not a terminal/);
  t.match(
    server.output(),
    /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN.*: DEVELOPMENT DEPLOYMENT: the master key and the JWT signing key were generated/m,
    'warns loudly about development secrets, in a readable line',
  );
  t.notMatch(server.output(), /^\{"level"/m, 'development logs are not JSON');

  const ready = await fetch(`${base}/ready`);
  t.equal(ready.status, 200);

  const { stdout: devToken } = await run(process.execPath, ['--import', 'tsx', 'scripts/dev-token.ts'], { env });
  const viaScript = await fetch(`${base}/v1/pca/config/console`, { headers: { 'x-auth-token': devToken.trim() } });
  t.equal(viaScript.status, 200, '`npm run dev-token` mints an accepted token');

  const { stdout: otherToken } = await run(process.execPath, ['--import', 'tsx', 'scripts/dev-token.ts', '--domain', 'second-tenant'], {
    env,
  });
  const claims = JSON.parse(Buffer.from(otherToken.trim().split('.')[1], 'base64url').toString()) as {
    domain_id: string;
    actions: string[];
  };
  t.equal(claims.domain_id, 'second-tenant');
  t.ok(claims.actions.includes('pca:ca:create'));
  const badTtl = await run(process.execPath, ['--import', 'tsx', 'scripts/dev-token.ts', '--ttl', 'abc'], { env }).catch((error) => error);
  t.match(badTtl, { code: 2, stderr: /^--ttl must be whole seconds from 1 to 2592000/ }, 'a bad --ttl is named, not a stack trace');

  t.equal(await server.stop(), 0, 'SIGTERM stops it cleanly');
});

t.test('second start reuses the data folder, its secrets and its database', async (t) => {
  const server = await startServer();
  t.teardown(() => server.child.kill('SIGKILL'));
  t.comment(`second start answered /health after ${Math.round(server.millisToHealthy)} ms`);
  const { stdout: devToken } = await run(process.execPath, ['--import', 'tsx', 'scripts/dev-token.ts'], { env });
  const response = await fetch(`${base}/v1/pca/config/console`, { headers: { authorization: `Bearer ${devToken.trim()}` } });
  t.equal(response.status, 200, 'tokens from the kept JWT key still verify');
  t.equal(await server.stop(), 0);
});

t.test('SIGTERM with a request that never completes: the process leaves after SHUTDOWN_GRACE_MS, saying so', async (t) => {
  const server = await startServer({ SHUTDOWN_GRACE_MS: '1000', REQUEST_TIMEOUT_MS: '120000' });
  t.teardown(() => server.child.kill('SIGKILL'));
  // A body announced and never sent in full: the request runs until the request timeout, far beyond the grace.
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(
    'POST /v1/private-certificate-authorities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"',
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  const started = performance.now();
  t.equal(await server.stop(), 1, 'exits with status 1');
  const waited = performance.now() - started;
  t.ok(waited >= 900 && waited < 15_000, `after the grace period (${Math.round(waited)} ms), not the request timeout`);
  t.match(server.output(), /requests still running after the shutdown grace period: exiting/);
});

t.test('production logs one JSON line per request', async (t) => {
  const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = await startServer({
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    PUBLIC_BASE_URL: 'https://pca.corp.acme',
    DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pca-server-production-')),
    MASTER_KEY: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY: jwt.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: jwt.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  });
  t.teardown(() => server.child.kill('SIGKILL'));
  t.equal((await fetch(`${base}/ready`)).status, 200);
  t.equal(await server.stop(), 0);
  // Stderr's plain lines from scripts/start.mjs (the warning on an unsupported Node, the notice of a rebuild when a
  // source changed since the last build) are not log records.
  const lines = server
    .output()
    .split('\n')
    .filter((line) => line && !line.startsWith('Warning: Node.js') && !line.startsWith('Building dist/'));
  const records = lines.map((line) => JSON.parse(line) as { msg: string; route?: string; status?: number });
  t.ok(
    records.some((record) => record.msg === 'request completed' && record.route === '/ready' && record.status === 200),
    'the request has its JSON line',
  );
  t.notMatch(server.output(), /export PCA_TOKEN/, 'no development token is printed');
});

t.test('a configuration error stops the start with a clear message', async (t) => {
  const result = await run(process.execPath, ['scripts/start.mjs'], { env: { ...env, PORT: 'eighty' } }).catch(
    (error: { code: number; stderr: string }) => error,
  );
  t.equal((result as { code: number }).code, 1);
  t.match((result as { stderr: string }).stderr, /Configuration error: PORT must be an integer/);
});

t.test('npm start refuses an unsupported Node with one message, before anything else', async (t) => {
  for (const version of ['20.20.2', '22.12.0', '23.11.0', '27.0.0']) {
    // START_NODE names no binary: the refusal itself, not a re-run on the Node npm install fetched.
    const result = await run(process.execPath, [...pretendNode(version), 'scripts/start.mjs'], {
      env: { ...env, ALLOW_UNSUPPORTED_NODE: '', START_NODE: '/nonexistent/node' },
    }).catch((error: { code: number; stderr: string }) => error);
    const { code, stderr } = result as { code: number; stderr: string };
    t.equal(code, 1, `${version}: refused`);
    t.notMatch(stderr, /^\s+at /m, `${version}: no stack trace`);
    // The last line: a rebuild of dist/ (sources newer than the last build) may print one before it.
    t.equal(
      stderr.trim().split('\n').at(-1),
      `Configuration error: Node.js ${version} is not supported: this service runs on Node.js ^22.13.0 || ^24.0.0 || ^26.0.0. Run it on one of those, or set ALLOW_UNSUPPORTED_NODE=1 to start anyway, untested`,
      `${version}: the one message`,
    );
  }
});

const supportedNode = [process.env.LAMBDA_NODE, startNodePath(), process.execPath]
  .filter((file): file is string => !!file && existsSync(file))
  .find((file) => isSupportedNode(execFileSync(file, ['-p', 'process.versions.node']).toString().trim()));

const noSupportedNode = supportedNode ? false : 'no supported Node here (LAMBDA_NODE, .node/ from npm install, or this one) to re-run on';
t.test(
  'npm start on an unsupported Node re-runs on the supported Node npm install fetched, and passes signals on',
  { skip: noSupportedNode },
  async (t) => {
    const supported = supportedNode!;
    const server = await startServerProcess(
      [...pretendNode('20.20.2'), 'scripts/start.mjs'],
      { ...env, ALLOW_UNSUPPORTED_NODE: '', START_NODE: supported },
      120_000,
    );
    t.teardown(() => server.child.kill('SIGKILL'));
    t.match(server.output(), `Node.js 20.20.2 is not supported: starting on ${supported}`);
    t.equal((await fetch(`${base}/ready`)).status, 200, 'the re-run server answers');
    t.notMatch(server.output(), /Warning: Node\.js|Configuration error/, 'the re-run Node is supported: no warning, no refusal');
    t.equal(await server.stop(), 0, 'SIGTERM reaches the re-run server, which stops cleanly');
  },
);

t.test('development mode refuses a non-loopback HOST unless ALLOW_DEV_ON_PUBLIC=1', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-server-public-'));
  const result = await run(process.execPath, ['scripts/start.mjs'], { env: { ...env, DATA_DIR: dataDir, HOST: '0.0.0.0' } }).catch(
    (error: { code: number; stderr: string }) => error,
  );
  t.equal((result as { code: number }).code, 1);
  t.match(
    (result as { stderr: string }).stderr,
    /Configuration error: development mode .* listens on loopback only, and HOST=0\.0\.0\.0 is not a loopback address/,
  );
});
