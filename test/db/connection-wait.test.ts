/**
 * A request never waits forever for a database connection: the pg pool (raw-SQL path and Prisma alike) gives up
 * after its connection wait, and the error reads as `unavailable`, which the API answers with 503 + Retry-After.
 * The first cases need no Postgres (a refused port, a listener that never answers); the HTTP case runs on a real
 * one with every connection of a one-connection pool held in an open transaction.
 */
import net from 'node:net';
import pg from 'pg';
import t from 'tap';
import { buildApp } from '../../src/app.ts';
import { openDatabase, type DatabaseHandle } from '../../src/db/database.ts';
import { dbErrorKind, mayHaveCommitted } from '../../src/db/errors.ts';
import { toAppError } from '../../src/http/error-handler.ts';
import type { FastifyRequest } from 'fastify';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createTestApp } from '../helpers/app.ts';
import { freePort, startTestPostgres } from '../helpers/database.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa } from '../certificates/support.ts';

/** Short, so the cases below do not wait the production 10 s. */
const WAIT_MS = 300;
const SELECT_ONE = { name: 'connection-wait-select-one', text: 'SELECT 1 AS one' };

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

/** What a query, a transaction, a Prisma query and a Prisma transaction each fail with, tried at once. */
async function failures(database: DatabaseHandle): Promise<Array<[string, unknown]>> {
  const attempts: Array<[string, () => Promise<unknown>]> = [
    ['query', () => database.query(SELECT_ONE, [])],
    ['transaction', () => database.transaction((sql) => sql(SELECT_ONE, []))],
    ['prisma', () => database.prisma.domain.count()],
    ['prisma transaction', () => database.prisma.$transaction((tx) => tx.domain.count())],
  ];
  return Promise.all(attempts.map(async ([path, attempt]): Promise<[string, unknown]> => [path, await rejection(attempt())]));
}

t.test('a refused connection is unavailable, on every path', async (t) => {
  const database = await openDatabase({
    url: `postgres://postgres@127.0.0.1:${await freePort()}/postgres`,
    poolSize: 1,
    connectionWaitMs: WAIT_MS,
  });
  t.teardown(() => database.close());
  for (const [path, error] of await failures(database)) {
    t.ok(error, `${path} fails`);
    t.equal(dbErrorKind(error), 'unavailable', `${path}: ${(error as Error).message}`);
  }
});

t.test('a server that accepts but never answers: the connect and the checkout behind it give up, unavailable', async (t) => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });
  const { port } = silent.address() as net.AddressInfo;
  const database = await openDatabase({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, poolSize: 1, connectionWaitMs: WAIT_MS });
  t.teardown(() => database.close());
  // The first opens the pool's one connection and times out connecting; the second waits for a checkout.
  const [connecting, queued] = await Promise.all([
    rejection(database.query(SELECT_ONE, [])),
    rejection(database.transaction(async () => 1)),
  ]);
  t.match(connecting, { message: /connection timeout/ });
  t.match(queued, { message: /timeout exceeded when trying to connect/ });
  t.equal(dbErrorKind(connecting), 'unavailable');
  t.equal(dbErrorKind(queued), 'unavailable');
});

t.test('a pg client already broken or closed: unavailable, and nothing was sent', async (t) => {
  const closed = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres' });
  closed.end().catch(() => undefined);
  const refused = await rejection(closed.query('SELECT 1'));
  t.match(refused, { message: /Client was closed and is not queryable/ });
  // What a client says once its connection failed under it (Postgres stopped mid-transaction, say).
  const broken = new Error('Client has encountered a connection error and is not queryable');
  for (const error of [refused, broken]) {
    t.equal(dbErrorKind(error), 'unavailable', (error as Error).message);
    t.equal(mayHaveCommitted(error), false, 'refused before sending: nothing can have committed');
  }
});

t.test('errors that are not about reaching the database are not unavailable', async (t) => {
  t.equal(dbErrorKind(new Error('timeout')), undefined);
  t.equal(dbErrorKind(Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' })), undefined);
});

t.test("Postgres' own 'not now' answers are unavailable; of them, only an error Postgres did not answer may have committed", async (t) => {
  const answered = (code: string) => Object.assign(new Error(`SQLSTATE ${code}`), { code, severity: 'ERROR' });
  for (const code of ['57P03', '53300', '53100', '57014', '55P03', '08006', '57P01']) {
    t.equal(dbErrorKind(answered(code)), 'unavailable', code);
    t.equal(mayHaveCommitted(answered(code)), false, `${code}: Postgres answered, so nothing was committed`);
  }
  for (const code of ['23505', '40001', '22001']) t.equal(mayHaveCommitted(answered(code)), false, code);
  const lost = new Error('Connection terminated unexpectedly');
  t.equal(dbErrorKind(lost), 'unavailable');
  t.equal(mayHaveCommitted(lost), true, 'the connection dropped before an answer: it may have');
  t.equal(mayHaveCommitted(new Error('timeout exceeded when trying to connect')), false, 'no connection: nothing was sent');
  for (const code of ['57014', '53300', '40001', '40P01']) {
    t.match(toAppError(answered(code), {} as FastifyRequest), { statusCode: 503, code: 'PCA.00050002' }, `${code}: 503 over HTTP`);
  }
});

t.test('a statement Postgres cancels (statement_timeout), raw or through Prisma, reads as unavailable', async (t) => {
  if (!(await onPostgres(t))) return;
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const raw = await rejection(
    harness.database.transaction(async (sql) => {
      await sql({ name: 'timeout-set', text: "SET LOCAL statement_timeout = '50ms'" }, []);
      return sql({ name: 'timeout-sleep', text: 'SELECT pg_sleep(2)' }, []);
    }),
  );
  const viaPrisma = await rejection(
    harness.database.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe("SET LOCAL statement_timeout = '50ms'");
      await tx.$queryRawUnsafe('SELECT pg_sleep(2)');
    }),
  );
  for (const [path, error] of [
    ['raw', raw],
    ['prisma', viaPrisma],
  ] as const) {
    t.equal(dbErrorKind(error), 'unavailable', `${path}: ${(error as Error).message}`);
    t.equal(mayHaveCommitted(error), false, `${path}: Postgres answered`);
  }
});

/** DATABASE_URL's Postgres, else a throwaway one for this test (false, with the test planned empty, if there is none). */
async function onPostgres(t: { plan(count: number, reason: string): void; teardown(fn: () => Promise<void>): void }): Promise<boolean> {
  if (process.env.DATABASE_URL) return true;
  const server = await startTestPostgres();
  if (!server) {
    t.plan(0, 'no DATABASE_URL and no Postgres binaries');
    return false;
  }
  process.env.DATABASE_URL = server.url;
  t.teardown(async () => {
    delete process.env.DATABASE_URL;
    await server.stop();
  });
  return true;
}

/**
 * An app on a pool of its own (the options under test) beside the harness's, with an issuing CA: `issue` signs a CSR
 * through that app.
 */
async function appOnItsOwnPool(
  t: { teardown(fn: () => Promise<void>): void },
  name: string,
  options: Omit<Parameters<typeof openDatabase>[0], 'url'>,
) {
  const harness = await createTestApp();
  const database = await openDatabase({ url: harness.database.url!, ...options });
  const keyStores = createKeyStores({ masterKey: harness.config.masterKey });
  const app = await buildApp({ config: harness.config, database, keyStores, logDestination: false });
  t.teardown(async () => {
    await app.close();
    await keyStores.software.close();
    await database.close();
    await harness.close();
  });
  const root = await seedCa(harness, { commonName: `${name}-root` });
  const issuer = await seedCa(harness, { commonName: `${name}-sub`, parent: root });
  const { csr } = await opensslCsr(await scratch(name), name, [...KEY_ARGS.p256], ['-subj', `/CN=${name}.example.com`]);
  const issue = () =>
    app.inject({
      method: 'POST',
      url: '/v1/private-certificates/csr',
      headers: harness.auth(),
      payload: { issuer_id: issuer.id, csr, validity: { type: 'DAY', value: 30 } },
    });
  return { harness, database, issue };
}

t.test('every pool connection busy: 503 with Retry-After in the contract format, then the same request issues', async (t) => {
  if (!(await onPostgres(t))) return;
  const { harness, database: small, issue } = await appOnItsOwnPool(t, 'wait', { poolSize: 1, connectionWaitMs: WAIT_MS });

  // The pool's one connection, held inside an open transaction until released.
  let holding!: () => void;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (holding = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const holder = small.transaction(async () => {
    holding();
    await released;
  });
  await held;

  const busy = await issue();
  t.equal(busy.statusCode, 503);
  t.match(busy.headers['content-type'], /^application\/json/);
  t.equal(busy.headers['retry-after'], '5');
  t.match(busy.json(), { error_code: 'PCA.00050002', error_msg: /temporarily unavailable/ });
  for (const [path, error] of await failures(small)) {
    t.equal(dbErrorKind(error), 'unavailable', `${path} gives up too`);
  }
  t.equal(await harness.database.prisma.certificate.count(), 0, 'nothing stored by the refused request');

  release();
  await holder;
  const answered = await issue();
  t.equal(answered.statusCode, 200, answered.body);
  const { certificate_id: id } = answered.json() as { certificate_id: string };
  t.equal((await harness.database.prisma.certificate.findUniqueOrThrow({ where: { id } })).commonName, 'wait.example.com');
});

t.test('a table held locked by another session: 503 after the lock wait, nothing half-written; released, it issues', async (t) => {
  if (!(await onPostgres(t))) return;
  const { harness, issue } = await appOnItsOwnPool(t, 'lock', { lockWaitMs: WAIT_MS });
  const count = () => harness.database.prisma.certificate.count();
  const before = await count();

  // Another session (the harness' own pool) holds the certificates table until released.
  let holding!: () => void;
  let release!: () => void;
  const held = new Promise<void>((resolve) => (holding = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  const holder = harness.database.transaction(async (sql) => {
    await sql({ name: 'lock-certificates', text: 'LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE' }, []);
    holding();
    await released;
  });
  await held;
  const started = Date.now();
  const blocked = await issue();
  t.equal(blocked.statusCode, 503, blocked.body);
  t.equal(blocked.headers['retry-after'], '5');
  t.match(blocked.json(), { error_code: 'PCA.00050002' });
  t.ok(Date.now() - started < 5_000, `answered after ${Date.now() - started} ms, not when the lock ended`);
  release();
  await holder;
  t.equal(await count(), before, 'nothing stored');
  const after = await issue();
  t.equal(after.statusCode, 200, after.body);
  t.equal(await count(), before + 1);
});
