/** The transaction types every data-access function takes. */
import type { Db, SqlStatement } from './database.ts';
import { dbErrorKind } from './errors.ts';

/** The Prisma transaction client handed to `prisma.$transaction(async (tx) => ...)`. */
export type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

/** Either the client or a transaction: for reads that may run inside or outside one. */
export type Reader = Db | Tx;

/** Runs one statement and returns its rows: `database.query`, or a raw transaction's (`database.transaction`). */
export type SqlRunner = <Row>(statement: SqlStatement, values: unknown[]) => Promise<Row[]>;

/** Where a named statement can run: a raw runner, or Prisma (the client or a transaction, which ignore the name). */
export type Executor = Reader | SqlRunner;

export function runnerOf(db: Executor): SqlRunner {
  if (typeof db === 'function') return db;
  return <Row>({ text }: SqlStatement, values: unknown[]) => db.$queryRawUnsafe<Row[]>(text, ...values);
}

/** How `retryingConflicts` retries. */
export interface RetryOptions {
  /** Runs in all, the first included (default 3). */
  attempts?: number;
  /**
   * Also run again when a unique constraint refused a row: for a transaction that draws the value afresh each run
   * (a random serial number), where a collision is bad luck, not a conflict with a kept row.
   */
  retryUniqueViolations?: boolean;
}

/**
 * Runs `transaction` again, up to `attempts` times in all, when Postgres aborted it to break a deadlock or a
 * serialization conflict: nothing of it was kept, and a fresh run reads the state afresh. For changes whose locks
 * cannot all be taken in one order (a CA's transition locks its row, then the CAs above or below it).
 */
export async function retryingConflicts<T>(
  transaction: () => Promise<T>,
  { attempts = 3, retryUniqueViolations = false }: RetryOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
    } catch (error) {
      const kind = dbErrorKind(error);
      const retryable = kind === 'retryable' || (retryUniqueViolations && kind === 'unique-violation');
      if (!retryable || attempt >= attempts) throw error;
    }
  }
}
