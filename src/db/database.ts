/**
 * Opens the Prisma client over either a real Postgres (DATABASE_URL, through @prisma/adapter-pg and a pg Pool)
 * or an embedded PGlite (a data folder, through pglite-prisma-adapter).
 */
import { mkdir } from 'node:fs/promises';
// PGlite is loaded only when used: a Postgres deployment (Lambda) ships without it.
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { QUERY_WAIT_MS, SERVER_POOL_SIZE } from '../config.ts';
import { PrismaClient } from './generated/client.ts';
import { runnerOf, type SqlRunner } from './tx.ts';

export type Db = PrismaClient;

/** Connections of the database pool, for the metrics; absent for the embedded PGlite (one connection, no pool). */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface DatabaseHandle {
  prisma: Db;
  kind: 'pglite' | 'postgres';
  /** Disconnects Prisma and closes the pool, or the PGlite instance if this handle opened it. */
  close(): Promise<void>;
  /** Throws unless the database answers a query. */
  ping(): Promise<void>;
  /** The pg pool's connections (Postgres only), for the metrics. */
  poolStats?: () => PoolStats;
  /**
   * Rows of one SQL statement outside Prisma, prepared once per connection on Postgres (`name` identifies it): for
   * the hot paths where Prisma's per-query overhead costs more than the query (the OCSP responder).
   */
  query: SqlRunner;
  /**
   * One transaction of raw statements, prepared once per connection on Postgres: for the hot path whose every
   * statement is raw SQL (the issuance batch), without Prisma's interactive-transaction protocol around it.
   */
  transaction<T>(run: (sql: SqlRunner) => Promise<T>): Promise<T>;
}

/** A parameterised statement (`$1`, `$2`...) and the name it is prepared under. */
export interface SqlStatement {
  name: string;
  text: string;
}

export interface OpenDatabaseOptions {
  /** Postgres connection string (DATABASE_URL); takes precedence over the PGlite options. */
  url?: string;
  /** PGlite data folder, created (and initialised, which takes seconds) if missing. */
  dataDir?: string;
  /** An already open PGlite instance; the caller keeps ownership and closes it. */
  pglite?: PGlite;
  /** Connections in the pg pool (Postgres only). */
  poolSize?: number;
  /** How long a query or transaction waits for a pool connection before it fails (Postgres only; default CONNECTION_WAIT_MS). */
  connectionWaitMs?: number;
  /** How long a statement waits for a lock before Postgres cancels it (Postgres only; default LOCK_WAIT_MS). */
  lockWaitMs?: number;
  /**
   * How long a query waits for its answer (Postgres only; default QUERY_WAIT_MS): Postgres cancels a statement that
   * runs longer (statement_timeout), and the client gives up on a server that does not answer at all (a frozen host,
   * a partition), ending the connection.
   */
  queryWaitMs?: number;
}

/**
 * PGlite has one connection, so the adapter queues interactive transactions behind each other: give a queued
 * transaction longer than Prisma's 2 s to start.
 */
const PGLITE_TRANSACTION_OPTIONS = { maxWait: 15_000, timeout: 15_000 };

/**
 * Postgres: a burst of concurrent issuances queues for the pool's connections; Prisma's 2 s default wait would
 * turn that queue into errors. The raw-SQL path (pool checkouts, and connecting to the server) waits as long as
 * Prisma's transactions: past it, the request gets a 503 with Retry-After rather than waiting forever.
 */
const CONNECTION_WAIT_MS = 10_000;
/**
 * Postgres' lock_timeout on every connection of the pool: a row or table held by a stuck session (a manual LOCK, a
 * long migration) fails the requests queued behind it with 55P03, a 503, instead of holding each for as long as
 * the lock lasts and, with them, every pool connection. Our own transactions hold their locks for milliseconds.
 */
const LOCK_WAIT_MS = 10_000;
const POSTGRES_TRANSACTION_TIMEOUT_MS = 15_000;
const SESSION_IN_UTC = "SET TIME ZONE 'UTC'";

function handle(
  prisma: Db,
  kind: DatabaseHandle['kind'],
  sql: Pick<DatabaseHandle, 'query' | 'transaction'>,
  release: () => Promise<void>,
  poolStats?: () => PoolStats,
): DatabaseHandle {
  return {
    prisma,
    kind,
    poolStats,
    ...sql,
    async close() {
      await prisma.$disconnect();
      await release();
    },
    async ping() {
      await prisma.$queryRaw`SELECT 1`;
    },
  };
}

/** What pg rejects a query with when its query_timeout passes without an answer. */
const QUERY_READ_TIMEOUT = 'Query read timeout';

/**
 * pg's query_timeout answers the caller but leaves the query in flight on the connection: whoever used it next
 * (Prisma releases a transaction's connection without an error) would queue behind it, inside the transaction it
 * left open, and be answered once the server woke up. A connection whose query timed out is ended instead (with
 * the query in flight, pg destroys the socket), so the pool drops it.
 */
class EndsOnReadTimeout extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query() overloads (promise or callback, text or config) pass through.
  override query(config: any, values?: any, callback?: any): any {
    const endOnTimeout = (error: unknown) => {
      if ((error as Error | undefined)?.message === QUERY_READ_TIMEOUT) void this.end();
    };
    const settle = (done: (error: Error, result: unknown) => void) => (error: Error, result: unknown) => {
      endOnTimeout(error);
      done(error, result);
    };
    if (typeof values === 'function') return super.query(config, settle(values));
    if (typeof callback === 'function') return super.query(config, values, settle(callback));
    const result = super.query(config, values);
    // The caller keeps the rejection; this branch only watches it.
    if (result instanceof Promise) result.catch(endOnTimeout);
    return result;
  }
}

function openPostgres(url: string, poolSize: number, connectionWaitMs: number, lockWaitMs: number, queryWaitMs: number): DatabaseHandle {
  // allowExitOnIdle: idle connections must not keep a finished process (a script, a test) alive.
  const pool = new pg.Pool({
    Client: EndsOnReadTimeout,
    connectionString: url,
    max: poolSize,
    allowExitOnIdle: true,
    connectionTimeoutMillis: connectionWaitMs,
    lock_timeout: lockWaitMs,
    statement_timeout: queryWaitMs,
    query_timeout: queryWaitMs,
    // Every session in UTC, whatever the server's or database's TimeZone. Prisma's adapter sends a Date as a timestamp
    // without zone, which a session elsewhere reads as its local time (New York stored 12:00Z as 16:00Z), and pg's own
    // statements, which send the zone, would then disagree with it; date arithmetic (a month) is reckoned in it too.
    // The pool hands the connection out once this has run, and drops it if it fails.
    onConnect: async (client) => {
      await client.query(SESSION_IN_UTC);
    },
  });
  // An idle connection the server drops (restart, failover, DROP DATABASE) must not crash the process:
  // the pool discards it and the next query opens a fresh one.
  pool.on('error', () => undefined);
  const transactionOptions = { maxWait: connectionWaitMs, timeout: POSTGRES_TRANSACTION_TIMEOUT_MS };
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool), transactionOptions });
  const poolStats = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
  const query = async <Row>({ name, text }: SqlStatement, values: unknown[]) => (await pool.query({ name, text, values })).rows as Row[];
  return handle(prisma, 'postgres', { query, transaction: (run) => pgTransaction(pool, run) }, () => pool.end(), poolStats);
}

async function pgTransaction<T>(pool: pg.Pool, run: (sql: SqlRunner) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out client's connection errors (the server ending it) reach its listeners, not the pool's.
  const onError = (error: Error) => {
    broken = error;
  };
  client.on('error', onError);
  try {
    // Prisma's transaction timeout, as Postgres enforces it: a transaction left idle (its holder stuck) is ended.
    await client.query(`BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${POSTGRES_TRANSACTION_TIMEOUT_MS}`);
    const result = await run(
      async <Row>({ name, text }: SqlStatement, values: unknown[]) => (await client.query({ name, text, values })).rows as Row[],
    );
    await client.query('COMMIT');
    return result;
  } catch (error) {
    // A connection that cannot even roll back is dropped, not returned to the pool.
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

async function openPglite(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  let pglite = options.pglite;
  const ownsPglite = !pglite;
  if (!pglite) {
    if (!options.dataDir) throw new Error('openDatabase needs a url, a dataDir or a pglite instance');
    await mkdir(options.dataDir, { recursive: true });
    const { PGlite } = await import('@electric-sql/pglite');
    pglite = await PGlite.create(options.dataDir);
  }
  await pglite.exec(SESSION_IN_UTC);
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pglite), transactionOptions: PGLITE_TRANSACTION_OPTIONS });
  const opened = pglite;
  // Through the adapter, which queues it behind an open interactive transaction on PGlite's one connection.
  const sql = {
    query: runnerOf(prisma),
    transaction: <T>(run: (sql: SqlRunner) => Promise<T>) => prisma.$transaction((tx) => run(runnerOf(tx))),
  };
  return handle(prisma, 'pglite', sql, async () => {
    if (ownsPglite) await opened.close();
  });
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<DatabaseHandle> {
  if (options.url) {
    const {
      url,
      poolSize = SERVER_POOL_SIZE,
      connectionWaitMs = CONNECTION_WAIT_MS,
      lockWaitMs = LOCK_WAIT_MS,
      queryWaitMs = QUERY_WAIT_MS,
    } = options;
    return openPostgres(url, poolSize, connectionWaitMs, lockWaitMs, queryWaitMs);
  }
  return openPglite(options);
}
