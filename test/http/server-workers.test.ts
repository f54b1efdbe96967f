/**
 * WORKERS=2 (node:cluster): the primary forks two workers on one port and serves nothing itself; a worker killed
 * after serving a while is replaced at once while the other goes on answering, and one that dies soon after it
 * listens is started again ever more slowly; a replacement that cannot start (Postgres refusing connections) is
 * tried again later, the server still up; SIGTERM stops them all; more than one worker without Postgres is refused
 * at start (PGlite serves one process).
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { STEADY_MS } from '../../src/server-workers.ts';
import { createTestAppOnRealPostgres, testConfig, type TestApp } from '../helpers/app.ts';
import { realPostgresOrSkipTest } from '../helpers/database.ts';
import { childrenOf, type ServerProcess, startSharedServer } from '../helpers/server-process.ts';

t.test('WORKERS above 1 needs DATABASE_URL; 1 is the default', async (t) => {
  t.throws(() => testConfig({ WORKERS: '2' }), { name: 'ConfigError', message: /WORKERS above 1 needs DATABASE_URL/ });
  t.throws(() => testConfig({ WORKERS: '0' }), { name: 'ConfigError', message: /WORKERS must be an integer from 1 to 64/ });
  t.equal(testConfig().workers, 1);
  t.equal(testConfig({ WORKERS: '2', DATABASE_URL: 'postgres://pca@127.0.0.1:5432/pca' }).workers, 2);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `probe` until it gives a value; `output` (the server's so far) goes into the error when it never does. */
async function until<T>(what: string, probe: () => T | undefined, output: () => string, timeoutMs = 120_000): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    const value = probe();
    if (value !== undefined) return value;
  }
  throw new Error(`timed out waiting for ${what}; the server's output:\n${output()}`);
}

/** A GET on a connection of its own (no keep-alive), so each request is a new connection the primary hands out. */
function get(base: string, urlPath: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    // A connection node:cluster hands to a worker as it dies is never answered: a bound turns that into an error.
    const request = http.get(`${base}${urlPath}`, { agent: false, headers, timeout: 30_000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath}: no answer in 30 s`))).on('error', reject);
  });
}

/** A test app on a real Postgres (workers need one) and a data folder, both gone after `t`; undefined: `t` skipped. */
async function onRealPostgres(t: Test): Promise<{ harness: TestApp; dataDir: string } | undefined> {
  const postgres = await realPostgresOrSkipTest(t);
  if (!postgres) return undefined;
  const harness = await createTestAppOnRealPostgres(postgres);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-workers-'));
  t.teardown(async () => {
    await harness.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { harness, dataDir };
}

/** The server with WORKERS=2 (stopped after `t` if still up), once both workers listen: their pids in the log's order. */
async function startTwoWorkers(t: Test, harness: TestApp, dataDir: string, env: Record<string, string> = {}) {
  const server = await startSharedServer(harness, dataDir, { WORKERS: '2', LOG_LEVEL: 'warn', ...env });
  t.teardown(() => (server.child.exitCode === null ? server.stop() : undefined));
  const listening = await until(
    'two workers listening',
    () => {
      const pids = [...server.output().matchAll(/worker \d \(pid (\d+)\) listening\n/g)].map((match) => Number(match[1]));
      return pids.length === 2 ? pids : undefined;
    },
    server.output,
  );
  // The workers by the primary's log (node:cluster's fork; tsx may have an esbuild child of its own there too).
  const workers = listening.filter((pid) => childrenOf(server.child.pid!).includes(pid));
  t.equal(workers.length, 2, 'the primary forked two workers, both listening');
  return { server, workers };
}

t.test('two workers on one port: one killed after a while is replaced at once while the other answers; SIGTERM stops all', async (t) => {
  const set = await onRealPostgres(t);
  if (!set) return;
  const { harness, dataDir } = set;
  const { server, workers } = await startTwoWorkers(t, harness, dataDir);
  const listened = performance.now();
  const primary = server.child.pid!;
  const auth = harness.auth(harness.config.defaultDomainId);
  for (let i = 0; i < 10; i++) t.equal(await get(server.base, '/v1/private-certificate-authorities', auth), 200);
  // Past the window in which a death counts as the worker's own doing (and so waits before its replacement).
  await sleep(STEADY_MS + 500 - (performance.now() - listened));

  const [victim, survivor] = workers;
  process.kill(victim!, 'SIGKILL');
  const replacedLine = new RegExp(`worker \\d \\(pid (\\d+)\\) listening in place of pid ${victim}`);
  const replacement = await until('the replacement to listen', () => replacedLine.exec(server.output())?.[1], server.output);
  t.match(server.output(), new RegExp(`worker \\d \\(pid ${victim}\\) exited \\(SIGKILL\\); starting another`));
  const replaced = [survivor!, Number(replacement)];
  t.same(
    replaced.filter((pid) => childrenOf(primary).includes(pid)),
    replaced,
    'the other worker kept running beside the replacement',
  );
  t.notOk(alive(victim!), 'the killed worker is gone');
  const statuses = [];
  for (let i = 0; i < 10; i++) statuses.push(await get(server.base, '/v1/private-certificate-authorities', auth));
  t.same(statuses, Array(10).fill(200), 'every new connection answered after the replacement');

  t.equal(await server.stop(), 0, 'SIGTERM: the primary exits 0 once its workers have');
  t.same(
    replaced.filter((pid) => alive(pid)),
    [],
    'no worker outlives the primary',
  );
});

t.test('a worker that dies soon after it listens is started again ever more slowly, the other serving meanwhile', async (t) => {
  const set = await onRealPostgres(t);
  if (!set) return;
  const { harness, dataDir } = set;
  const {
    server,
    workers: [first, survivor],
  } = await startTwoWorkers(t, harness, dataDir);
  const auth = harness.auth(harness.config.defaultDomainId);
  // Each worker in that place is killed as soon as it listens, as one crashing on its first requests would die.
  const waits: number[] = [];
  let victim = first!;
  for (let round = 0; round < 3; round++) {
    const killed = performance.now();
    process.kill(victim, 'SIGKILL');
    const exited = new RegExp(
      `worker \\d \\(pid ${victim}\\) exited \\(SIGKILL\\)(?: \\d+ ms after it listened; another in (\\d+) ms|; starting another)\n`,
    );
    const wait = Number((await until('the primary to see the worker go', () => whileRunning(server, exited), server.output))[1] ?? 0);
    waits.push(wait);
    t.equal(await get(server.base, '/v1/private-certificate-authorities', auth), 200, 'the other worker answers meanwhile');
    const replaced = new RegExp(`worker \\d \\(pid (\\d+)\\) listening in place of pid ${victim}\n`);
    victim = Number(await until('the next worker to listen', () => whileRunning(server, replaced)?.[1], server.output));
    t.ok(performance.now() - killed >= wait, `not started before its wait (${wait} ms) was over`);
  }
  t.same(waits, [1000, 2000, 4000], 'each worker that died soon after listening was replaced after a wait twice the last');
  t.ok(childrenOf(server.child.pid!).includes(survivor!), 'the other worker ran throughout');
  t.equal(await server.stop(), 0, 'SIGTERM: the primary exits 0 once its workers have');
});

t.test('a worker that dies before it listens stops the whole server instead of being replaced over and over', async (t) => {
  const set = await onRealPostgres(t);
  if (!set) return;
  const { harness, dataDir } = set;
  // The port already taken: every worker's listen fails, as a wrong key store or database would fail its start.
  const blocker = http.createServer((_request, response) => response.writeHead(404).end());
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = String((blocker.address() as { port: number }).port);
  // startSharedServer waits for /health (the blocker answers 404) and gives up with the output once the server exits.
  const failure = await startSharedServer(harness, dataDir, { WORKERS: '2', PORT: port }).then(
    () => undefined,
    (error: Error) => error.message,
  );
  t.match(failure, /server exited before it answered \/health/, 'the primary exited on its own');
  t.match(failure, /worker \d \(pid \d+\) exited \(code 1\) before it listened; stopping/, 'because a worker died before listening');
  t.notMatch(failure, /starting another/, 'no worker was started in its place');
});

/**
 * A TCP proxy to the Postgres of `databaseUrl` on a port of its own; while `refusing`, each new connection is dropped
 * at once (as by a server failing over) and those piped before go on working.
 */
async function postgresProxy(t: Test, databaseUrl: string): Promise<{ url: string; refusing: boolean }> {
  const target = new URL(databaseUrl);
  const piped = new Set<net.Socket>();
  const proxy = { url: '', refusing: false };
  const server = net.createServer((client) => {
    if (proxy.refusing) return void client.destroy();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      piped.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        piped.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of piped) socket.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  const proxied = new URL(databaseUrl);
  proxied.hostname = '127.0.0.1';
  proxied.port = String((server.address() as net.AddressInfo).port);
  proxy.url = proxied.href;
  return proxy;
}

/** The first match of `pattern` in the server's output; throws (the output in the error) once the server has exited. */
function whileRunning(server: ServerProcess, pattern: RegExp): RegExpExecArray | undefined {
  if (server.child.exitCode !== null || server.child.signalCode !== null) {
    throw new Error(`the server exited (${server.child.exitCode ?? server.child.signalCode}); its output:\n${server.output()}`);
  }
  return pattern.exec(server.output()) ?? undefined;
}

/**
 * WORKERS=2 on `harness`'s database through a Postgres proxy, both workers listening and answering; then the proxy
 * refuses new connections, one worker is SIGKILLed, and its replacement fails to start before it listens.
 */
async function replacementFailing(t: Test) {
  const set = await onRealPostgres(t);
  if (!set) return undefined;
  const { harness, dataDir } = set;
  const proxy = await postgresProxy(t, harness.database.url!);
  const {
    server,
    workers: [victim, survivor],
  } = await startTwoWorkers(t, harness, dataDir, { DATABASE_URL: proxy.url });
  const primary = server.child.pid!;
  const auth = harness.auth(harness.config.defaultDomainId);
  for (let i = 0; i < 5; i++) t.equal(await get(server.base, '/v1/private-certificate-authorities', auth), 200);

  proxy.refusing = true;
  process.kill(victim!, 'SIGKILL');
  // Once the primary has seen the victim go, so that no connection is handed to it as it dies (one would hang).
  await until(
    'the victim to be gone',
    () => whileRunning(server, new RegExp(`worker \\d \\(pid ${victim}\\) exited \\(SIGKILL\\)[^\n]*\n`)),
    server.output,
  );
  // Requests all along, so the survivor's pooled connections (opened before the refusal) stay in use and are not
  // closed as idle while the replacement starts: a new one could not be opened.
  let busy = true;
  const statuses: number[] = [];
  const requests = (async () => {
    for (; busy; await sleep(200)) statuses.push(await get(server.base, '/v1/private-certificate-authorities', auth).catch(() => 0));
  })();
  try {
    await until(
      "the victim's replacement to fail before it listens, and its retry to be planned",
      () => whileRunning(server, /worker \d \(pid \d+\) exited \(code \d+\) before it listened; another in \d+ ms\n/),
      server.output,
    );
    t.ok(alive(primary), 'the primary is still up');
    t.ok(childrenOf(primary).includes(survivor!), 'the other worker is still running');
  } finally {
    busy = false;
    await requests;
  }
  // One request at a time, as before: two at once could need a connection more than the survivor holds.
  for (let i = 0; i < 10; i++) t.equal(await get(server.base, '/v1/private-certificate-authorities', auth), 200);
  t.same(statuses, Array(statuses.length).fill(200), 'the other worker answered every request while the replacement failed');
  return { server, proxy, victim: victim!, survivor: survivor!, auth };
}

t.test('a replacement that fails before it listens (Postgres refusing connections) is tried again; the server stays up', async (t) => {
  const set = await replacementFailing(t);
  if (!set) return;
  const { server, proxy, victim, survivor, auth } = set;
  proxy.refusing = false;
  const replacement = await until(
    'the replacement to listen once Postgres accepts again',
    () => whileRunning(server, new RegExp(`worker \\d \\(pid (\\d+)\\) listening in place of pid ${victim}\n`))?.[1],
    server.output,
  );
  t.ok(childrenOf(server.child.pid!).includes(Number(replacement)), 'the replacement is a worker of the primary');
  for (let i = 0; i < 10; i++) t.equal(await get(server.base, '/v1/private-certificate-authorities', auth), 200);
  t.equal(await server.stop(), 0, 'SIGTERM: the primary exits 0 once its workers have');
  t.same(
    [survivor, Number(replacement)].filter((pid) => alive(pid)),
    [],
    'no worker outlives the primary',
  );
});

t.test('SIGTERM while a replacement waits to be tried again stops the server', async (t) => {
  const set = await replacementFailing(t);
  if (!set) return;
  const { server, survivor } = set;
  t.equal(await server.stop(), 0, 'SIGTERM: the primary exits 0 without waiting for the retry');
  t.notOk(alive(survivor), 'the other worker is gone too');
});

t.test('once no worker serves, a replacement failing before it listens stops the server (exit 1) for its manager', async (t) => {
  const set = await replacementFailing(t);
  if (!set) return;
  const { server, survivor } = set;
  // The survivor's replacement cannot start either (Postgres still refuses): nothing would answer while retries went on.
  process.kill(survivor, 'SIGKILL');
  const exitCode = await until('the primary to exit', () => server.child.exitCode ?? undefined, server.output);
  t.equal(exitCode, 1, 'the primary exits 1');
  t.match(server.output(), /before it listened, and no worker is serving; stopping\n/);
});
