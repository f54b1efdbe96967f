/**
 * What a database error means to the caller, whichever path raised it: a Prisma model query (P20xx), a raw query
 * through Prisma (P2010 carrying the driver adapter's error), or a statement run straight on pg or PGlite (the
 * Postgres SQLSTATE in `code`). Services decide retries from it; the HTTP error handler maps `unavailable` to 503.
 */
import { Prisma } from './generated/client.ts';

export type DbErrorKind =
  /** A unique constraint refused the row (SQLSTATE 23505). */
  | 'unique-violation'
  /** Postgres aborted the transaction to break a deadlock or a serialization conflict: it may simply run again. */
  | 'retryable'
  /** No connection, or none in time: the request may be retried later (503). */
  | 'unavailable';

const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

// P1001/P1002/P1017: server unreachable or gone; P2024: no pool connection in time; P2028: a transaction could not
// start or ran out of time. From pg itself: ECONNREFUSED and the like; pg-pool's "timeout exceeded when trying to
// connect" (no free connection within connectionTimeoutMillis) and "Connection terminated due to connection
// timeout" (the server did not finish the connect in that time).
const UNAVAILABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|P1001|P1002|P1017|P2024|P2028|terminating connection|Connection terminated|timeout exceeded when trying to connect/i;

export function dbErrorKind(error: unknown): DbErrorKind | undefined {
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    const cause = (error.meta?.driverAdapterError as { cause?: { kind?: string } } | undefined)?.cause;
    // Model queries raise P2002 (its meta differs: PGlite names the fields, pg the index) and P2034.
    if (error.code === 'P2002' || cause?.kind === 'UniqueConstraintViolation') return 'unique-violation';
    if (error.code === 'P2034' || cause?.kind === 'TransactionWriteConflict') return 'retryable';
  }
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code === '23505') return 'unique-violation';
  if (typeof code === 'string' && RETRYABLE_SQLSTATES.has(code)) return 'retryable';
  if (typeof message === 'string' && /deadlock detected/i.test(message)) return 'retryable';
  if (UNAVAILABLE.test(`${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`)) return 'unavailable';
  return undefined;
}

export const isUniqueViolation = (error: unknown): boolean => dbErrorKind(error) === 'unique-violation';
