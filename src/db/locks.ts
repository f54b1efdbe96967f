/**
 * Every lock a service takes, in one place and one idiom.
 *
 * Advisory locks are transaction-scoped and keyed by (class, hashtext(key)): the class names what is serialized,
 * so two uses can never meet on one lock by accident, and a hash collision inside a class only serializes two
 * unrelated keys a little longer. (The migration lock in migrate.ts is session-scoped, on its own connection.)
 *
 * CA row locks are always taken in id order, in one statement, so transactions locking several CAs cannot deadlock
 * on them. FOR SHARE is what issuance takes (a concurrent disable waits); FOR UPDATE what a state change takes (so
 * it waits for in-flight issuances, and issuances after it see the new state). Other rows are locked one at a time.
 */
import { errors } from '../errors.ts';
import type { SqlStatement } from './database.ts';
import { isLockTimeout } from './errors.ts';
import { Prisma } from './generated/client.ts';
import { runnerOf, type Executor, type Reader } from './tx.ts';

/** Advisory-lock classes (four ASCII letters as an int4), one per kind of serialized work. */
export const LOCK_CLASS = {
  /** A domain's CA-quota check and the CA rows it counts. */
  caQuota: 0x43415155, // 'CAQU'
  /** Settlement of one CA's usage hours. */
  settlement: 0x53544c4d, // 'STLM'
  /** Signing one CA's CRL. */
  crlSigning: 0x43524c53, // 'CRLS'
  /** Publishing one CA's CRL to object storage. */
  crlPublication: 0x43524c50, // 'CRLP'
  /** A domain's access-key quota check and the key rows it counts. */
  accessKeyQuota: 0x414b5155, // 'AKQU'
} as const;

export type LockClass = keyof typeof LOCK_CLASS;

// (`::text`: Prisma cannot read a void column.)
export const ADVISORY_LOCK_SQL: SqlStatement = { name: 'advisory-lock', text: 'SELECT pg_advisory_xact_lock($1::int, hashtext($2))::text' };
export const TRY_ADVISORY_LOCK_SQL: SqlStatement = {
  name: 'try-advisory-lock',
  text: 'SELECT pg_try_advisory_xact_lock($1::int, hashtext($2)) AS locked',
};

/** Waits for the (class, key) lock, held until the transaction ends. */
export async function advisoryLock(tx: Executor, lockClass: LockClass, key: string): Promise<void> {
  await runnerOf(tx)(ADVISORY_LOCK_SQL, [LOCK_CLASS[lockClass], key]);
}

/** Takes the (class, key) lock until the transaction ends if no one holds it; false (without waiting) otherwise. */
export async function tryAdvisoryLock(tx: Executor, lockClass: LockClass, key: string): Promise<boolean> {
  const [row] = await runnerOf(tx)<{ locked: boolean }>(TRY_ADVISORY_LOCK_SQL, [LOCK_CLASS[lockClass], key]);
  return row?.locked === true;
}

const LOCK_WAIT_SAVEPOINT: SqlStatement = { name: 'lock-wait-savepoint', text: 'SAVEPOINT lock_wait' };
const LOCK_WAIT_RELEASE: SqlStatement = { name: 'lock-wait-release', text: 'RELEASE SAVEPOINT lock_wait' };
const LOCK_WAIT_ROLLBACK: SqlStatement = { name: 'lock-wait-rollback', text: 'ROLLBACK TO SAVEPOINT lock_wait' };
const LOCK_TIMEOUT_NOW: SqlStatement = { name: 'lock-timeout-now', text: "SELECT current_setting('lock_timeout') AS value" };
const SET_LOCK_TIMEOUT: SqlStatement = { name: 'set-lock-timeout', text: "SELECT set_config('lock_timeout', $1, true) AS value" };

/**
 * Waits up to `waitMs` for the (class, key) lock in Postgres' own queue (first come, first served), in waits of at
 * most `sliceMs` each under a savepoint: one waiting statement behind a lock held for seconds (a large CRL's
 * signing) would pass the pool's statement bound (DATABASE_QUERY_TIMEOUT_MS), which cuts it off. A slice that runs
 * out is rolled back to its savepoint and the wait goes on, keeping its place as best Postgres can (a new request
 * joins the queue's end); past `waitMs`, 503. The transaction's lock_timeout is as before afterwards.
 */
export async function advisoryLockWithin(tx: Executor, lockClass: LockClass, key: string, waitMs: number, sliceMs: number): Promise<void> {
  const run = runnerOf(tx);
  const [{ value: lockTimeout }] = (await run<{ value: string }>(LOCK_TIMEOUT_NOW, [])) as [{ value: string }];
  const deadline = Date.now() + waitMs;
  for (;;) {
    const slice = Math.min(sliceMs, deadline - Date.now());
    if (slice <= 0) throw errors.unavailable(`waited ${waitMs} ms for the ${lockClass} lock of ${key}; retry shortly`);
    await run(LOCK_WAIT_SAVEPOINT, []);
    await run(SET_LOCK_TIMEOUT, [`${slice}ms`]);
    try {
      await advisoryLock(tx, lockClass, key);
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      await run(LOCK_WAIT_ROLLBACK, []);
      continue;
    }
    await run(LOCK_WAIT_RELEASE, []);
    await run(SET_LOCK_TIMEOUT, [lockTimeout]);
    return;
  }
}

export type RowLockMode = 'share' | 'update';

/** The CA rows' lock statement, in id order (rows that do not exist are skipped). */
export function lockCaRowsSql(ids: readonly string[], mode: RowLockMode): Prisma.Sql {
  const sorted = [...new Set(ids)].sort();
  const strength = mode === 'update' ? Prisma.sql`FOR UPDATE` : Prisma.sql`FOR SHARE`;
  return Prisma.sql`SELECT 1 FROM certificate_authorities WHERE id = ANY(${sorted}::uuid[]) ORDER BY id ${strength}`;
}

/** Locks the CA rows until the transaction ends, in id order (outside a transaction, only until the statement ends). */
export async function lockCaRows(tx: Reader, ids: readonly string[], mode: RowLockMode): Promise<void> {
  if (ids.length > 0) await tx.$queryRaw(lockCaRowsSql(ids, mode));
}

/** The tables whose single rows a service locks to queue concurrent writes that follow on the row. */
export type RowLockTable = 'certificates' | 'acme_orders';

/** The row's FOR UPDATE lock statement (a row that does not exist is skipped). */
export function lockRowSql(table: RowLockTable, id: string): Prisma.Sql {
  return Prisma.sql`SELECT 1 FROM ${Prisma.raw(table)} WHERE id = ${id}::uuid FOR UPDATE`;
}

/** Locks the row FOR UPDATE until the transaction ends. */
export async function lockRow(tx: Reader, table: RowLockTable, id: string): Promise<void> {
  await tx.$queryRaw(lockRowSql(table, id));
}
