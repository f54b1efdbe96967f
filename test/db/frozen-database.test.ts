/**
 * A Postgres that stops answering without closing its connections (a frozen host, a partition where packets vanish):
 * each query waits at most its bound, the request gets 503 + Retry-After in the contract's format, /ready says not
 * ready, and once the database answers again the service recovers by itself. The freeze is a TCP proxy between the
 * app and a real Postgres that stops forwarding both ways, its sockets left open, so only this app's connections
 * freeze. A real server on a port, the database bound set through openDatabase's options.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { buildApp } from '../../src/app.ts';
import { openDatabase } from '../../src/db/database.ts';
import { dbErrorKind } from '../../src/db/errors.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { READINESS_CHECK_WAIT_MS } from '../../src/services/readiness-service.ts';
import { createTestAppOnRealPostgres, SOFTWARE_KEYS_ONLY } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { seedCa } from '../certificates/support.ts';

/** Short, so the test does not wait the production bounds; without a query bound a request waits as long as the freeze. */
const BOUND_MS = 1_000;

/**
 * Forwards connections to `target`; freezes, both ways, right after forwarding the first chunk from the app that
 * contains `trigger` (the statement reaches Postgres, its answer never comes back), until thawed.
 */
async function freezingProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  let trigger: string | undefined;
  const server = net.createServer((app) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const [from, to] of [
      [app, upstream],
      [upstream, app],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        to.write(chunk);
        if (from === app && trigger !== undefined && chunk.includes(trigger)) {
          trigger = undefined;
          freeze();
        }
      });
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on('error', () => to.destroy());
      if (frozen) from.pause();
    }
  });
  function freeze() {
    frozen = true;
    for (const socket of sockets) socket.pause();
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    get frozen() {
      return frozen;
    },
    freeze,
    freezeAfter(text: string) {
      trigger = text;
    },
    thaw() {
      frozen = false;
      for (const socket of sockets) socket.resume();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

const postgres = await realPostgresOrSkipFile(t);
const harness = await createTestAppOnRealPostgres(postgres, { env: SOFTWARE_KEYS_ONLY });
t.teardown(() => harness.close());

// One app on a freezing proxy for the whole file; a generous timeout turns a hang into a failure.
t.test('a database that stops answering', { timeout: 120_000 }, async (t) => {
  const proxy = await freezingProxy(new URL(harness.database.url!));
  const database = await openDatabase({ url: proxy.url, poolSize: 3, connectionWaitMs: BOUND_MS, queryWaitMs: BOUND_MS });
  t.teardown(() => database.close());
  const keyStores = createKeyStores({ masterKey: harness.config.masterKey });
  t.teardown(() => keyStores.software.close());
  const app = await buildApp({ config: harness.config, database, keyStores, logDestination: false });
  t.teardown(() => app.close());
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  // Teardowns run last first: the proxy's sockets go before anything waits on them (a request still frozen, the pool).
  t.teardown(() => proxy.close());

  const root = await seedCa(harness, { commonName: 'frozen-root', keyAlgorithm: 'EC256' });
  const issuer = await seedCa(harness, { commonName: 'frozen-sub', keyAlgorithm: 'EC256', parent: root });
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { ...harness.auth(), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  const issue = () =>
    call('POST', '/v1/private-certificates', {
      issuer_id: issuer.id,
      key_algorithm: 'EC256',
      distinguished_name: { common_name: 'frozen.example.com' },
      validity: { type: 'DAY', value: 30 },
    });
  const getCa = () => call('GET', `/v1/private-certificate-authorities/${issuer.id}`);
  const ready = () => fetch(`${base}/ready`);

  async function isUnavailable(t: Test, response: Response, what: string) {
    t.equal(response.status, 503, `${what}: 503`);
    t.equal(response.headers.get('retry-after'), '5', `${what}: Retry-After`);
    t.match(response.headers.get('content-type'), /^application\/json/);
    t.match(await response.json(), { error_code: 'PCA.00050002', error_msg: String }, `${what}: the contract's error body`);
  }

  /** Every stored certificate of the issuer has its billing record and no billing record lacks its certificate. */
  async function nothingHalfWritten(t: Test) {
    const certificates = await harness.database.prisma.certificate.findMany({ where: { issuerId: issuer.id }, select: { id: true } });
    const billed = await harness.database.prisma.billingRecord.findMany({
      where: { resourceType: 'CERTIFICATE', resourceId: { in: certificates.map(({ id }) => id) } },
      select: { resourceId: true },
    });
    t.same(
      billed.map(({ resourceId }) => resourceId).sort(),
      certificates.map(({ id }) => id).sort(),
      'each certificate with its billing record',
    );
    const allBilled = await harness.database.prisma.billingRecord.count({ where: { resourceType: 'CERTIFICATE' } });
    t.equal(allBilled, certificates.length, 'no billing record without its certificate');
  }

  t.equal((await getCa()).status, 200, 'answers through the proxy');
  t.equal((await ready()).status, 200, 'ready through the proxy');

  // Frozen once the issuance has opened its transaction (nothing written yet), and once it has sent the statement
  // that writes the certificate, its audit event and its billing record (bulk-insert.ts names it insert-<hash>):
  // Postgres runs it, and its answer never comes back.
  for (const [statement, sent] of [
    ['BEGIN', 'BEGIN'],
    ['the write', 'insert-'],
  ]) {
    await t.test(`frozen after ${statement}: 503s while frozen, answers again once thawed`, { timeout: 60_000 }, async (t) => {
      proxy.freezeAfter(sent);
      await isUnavailable(t, await issue(), 'the issuance cut off');
      t.ok(proxy.frozen, `the freeze came after ${statement}`);
      await isUnavailable(t, await getCa(), 'a read while frozen');
      const notReady = await ready();
      t.equal(notReady.status, 503, '/ready: not ready');
      t.match(await notReady.json(), { checks: { database: 'failed' } });

      proxy.thaw();
      t.equal((await getCa()).status, 200, 'a read answers again');
      const issued = await issue();
      t.equal(issued.status, 200, 'an issuance succeeds again');
      t.equal((await ready()).status, 200, '/ready: ready again');
      await nothingHalfWritten(t);
    });
  }

  await t.test('/ready answers not ready within its own wait, whatever the query bound', { timeout: 30_000 }, async (t) => {
    // The production query bound (20 s) would hold /ready past any probe's timeout.
    const patient = await openDatabase({ url: proxy.url, connectionWaitMs: 60_000, queryWaitMs: 60_000 });
    t.teardown(() => patient.close());
    const patientApp = await buildApp({ config: harness.config, database: patient, keyStores, logDestination: false });
    t.teardown(() => patientApp.close());
    const patientBase = await patientApp.listen({ port: 0, host: '127.0.0.1' });
    t.equal((await fetch(`${patientBase}/ready`)).status, 200, 'ready');
    proxy.freeze();
    t.teardown(() => proxy.thaw());
    const notReady = await fetch(`${patientBase}/ready`);
    t.equal(notReady.status, 503, `not ready after READINESS_CHECK_WAIT_MS (${READINESS_CHECK_WAIT_MS} ms)`);
    t.match(await notReady.json(), { checks: { database: 'failed' } });
  });

  await t.test('a Prisma transaction cut off: its connection is not handed to the next user', { timeout: 60_000 }, async (t) => {
    // One connection, so the next query would get the cut-off transaction's if the pool kept it.
    const single = await openDatabase({ url: proxy.url, poolSize: 1, connectionWaitMs: BOUND_MS, queryWaitMs: BOUND_MS });
    t.teardown(() => single.close());
    const cutOff = await single.prisma
      .$transaction(async (tx) => {
        await tx.$executeRaw`INSERT INTO domains (id, name) VALUES ('frozen-transaction', 'frozen')`;
        proxy.freezeAfter('frozen-marker');
        await tx.$queryRaw`SELECT 'frozen-marker'`;
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    t.ok(proxy.frozen, 'frozen inside the transaction');
    t.equal(dbErrorKind(cutOff), 'unavailable', `the transaction fails as unavailable: ${(cutOff as Error)?.message}`);

    proxy.thaw();
    // Kept, the connection would answer the next query inside the cut-off transaction, never rolled back: its
    // uncommitted row in sight, and committed by the next user's COMMIT.
    const seen = await single.query<{ count: number }>(
      { name: 'frozen-seen', text: "SELECT count(*)::int AS count FROM domains WHERE id = 'frozen-transaction'" },
      [],
    );
    t.same(seen, [{ count: 0 }], 'the next query runs outside the cut-off transaction');
    t.equal(await harness.database.prisma.domain.count({ where: { id: 'frozen-transaction' } }), 0, 'the cut-off insert is not stored');
  });
});
