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

/**
 * SQLSTATEs that say "not now" rather than "not this": class 08 (connection exception), class 53 (insufficient
 * resources: too many connections, disk full, out of memory), 57P01-57P03 (shutting down, crashed, starting up),
 * 57014 (statement_timeout) and 55P03 (lock_timeout).
 */
const UNAVAILABLE_SQLSTATE = /^(08|53)...$|^57P0[1-3]$|^57014$|^55P03$/;
// How Prisma's pg adapter names a lost or refused connection (its other kinds are about the statement).
const UNAVAILABLE_ADAPTER_KINDS = new Set(['ConnectionClosed', 'DatabaseNotReachable', 'SocketTimeout', 'TooManyConnections']);

// P1001/P1002/P1017: server unreachable or gone; P2024: no pool connection in time; P2028: a transaction could not
// start or ran out of time; P2037: too many connections. From pg itself: ECONNREFUSED and the like; pg-pool's
// "timeout exceeded when trying to connect" (no free connection within connectionTimeoutMillis) and "Connection
// terminated due to connection timeout" (the server did not finish the connect in that time); and a client whose
// connection already failed or closed ("... and is not queryable"); and no answer to a query within its
// query_timeout ("Query read timeout": the server stopped answering).
const UNAVAILABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|P1001|P1002|P1017|P2024|P2028|P2037|terminating connection|Connection terminated|timeout exceeded when trying to connect|is not queryable|Query read timeout/i;

type AdapterCause = { kind?: string; originalCode?: string };

const adapterCauseOf = (error: unknown): AdapterCause | undefined =>
  error instanceof Prisma.PrismaClientKnownRequestError
    ? (error.meta?.driverAdapterError as { cause?: AdapterCause } | undefined)?.cause
    : undefined;

/** The SQLSTATE Postgres answered with: on pg's or PGlite's own error, or under Prisma's driver-adapter error. */
function sqlStateOf(error: unknown): string | undefined {
  // A Prisma error's own code (P2010) is Prisma's, not Postgres'.
  if (error instanceof Prisma.PrismaClientKnownRequestError) return adapterCauseOf(error)?.originalCode;
  const { code } = (error ?? {}) as { code?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function dbErrorKind(error: unknown): DbErrorKind | undefined {
  const cause = adapterCauseOf(error);
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    // Model queries raise P2002 (its meta differs: PGlite names the fields, pg the index) and P2034.
    if (error.code === 'P2002' || cause?.kind === 'UniqueConstraintViolation') return 'unique-violation';
    if (error.code === 'P2034' || cause?.kind === 'TransactionWriteConflict') return 'retryable';
  }
  const sqlState = sqlStateOf(error);
  if (sqlState === '23505') return 'unique-violation';
  if (sqlState && RETRYABLE_SQLSTATES.has(sqlState)) return 'retryable';
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof message === 'string' && /deadlock detected/i.test(message)) return 'retryable';
  if ((sqlState && UNAVAILABLE_SQLSTATE.test(sqlState)) || (cause?.kind && UNAVAILABLE_ADAPTER_KINDS.has(cause.kind))) {
    return 'unavailable';
  }
  if (UNAVAILABLE.test(`${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`)) return 'unavailable';
  return undefined;
}

export const isUniqueViolation = (error: unknown): boolean => dbErrorKind(error) === 'unique-violation';

/** Postgres gave up waiting for a lock (lock_timeout, 55P03). */
export const isLockTimeout = (error: unknown): boolean => sqlStateOf(error) === '55P03';

// Failures before anything was sent: no connection to send on (refused, none free in time, the connect timed out, a
// client already broken or closed).
const NOT_SENT =
  /ECONNREFUSED|P1001|P2024|timeout exceeded when trying to connect|Connection terminated due to connection timeout|is not queryable/i;

/**
 * Whether a failed write may nonetheless have committed: the connection was lost after it was sent and before
 * Postgres answered (an answer with a SQLSTATE means the statement, or the transaction, was refused). Writing it
 * again would store it twice.
 */
export function mayHaveCommitted(error: unknown): boolean {
  if (dbErrorKind(error) !== 'unavailable' || sqlStateOf(error) !== undefined) return false;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return !NOT_SENT.test(`${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`);
}
