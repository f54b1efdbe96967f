/**
 * Idempotent issuance (§10.8). A key is scoped to the domain and the endpoint and remembered only by a successful
 * issuance: its row is inserted in the issuing transaction, so concurrent requests with one key serialize on the
 * primary key and at most one issues. Bodies are compared as parsed JSON (key order and whitespace do not matter).
 */
import { createHash } from 'node:crypto';
import type { Db } from '../../db/database.ts';
import { errors } from '../../errors.ts';
import type { Tx } from '../context.ts';

export const IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000;
const MAX_KEY_LENGTH = 64;

export interface IdempotencyScope {
  domainId: string;
  endpoint: string;
  key: string;
}

/** The header value, or undefined when absent; any length outside 1-64 (or a repeated header) gets 400. */
export function checkIdempotencyKey(header: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || header.length < 1 || header.length > MAX_KEY_LENGTH) {
    throw errors.invalidParameter(`Idempotency-Key must be 1-${MAX_KEY_LENGTH} characters`);
  }
  return header;
}

/** Text written as is, on the work stack among values still to serialize. */
class Literal {
  constructor(readonly text: string) {}
}

/**
 * JSON with object keys sorted at every level, so equal parsed bodies give equal text. Iterative with an explicit
 * stack: JSON.parse accepts bodies nested far deeper than a recursive walk can go.
 */
export function canonicalJson(root: unknown): string {
  const out: string[] = [];
  const work: unknown[] = [root];
  while (work.length > 0) {
    const value = work.pop();
    if (value instanceof Literal) {
      out.push(value.text);
    } else if (Array.isArray(value)) {
      work.push(new Literal(']'));
      for (let i = value.length - 1; i >= 0; i--) {
        work.push(value[i]);
        if (i > 0) work.push(new Literal(','));
      }
      work.push(new Literal('['));
    } else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      // Key and value as two entries, so that the value is serialized in its turn.
      const keys = Object.keys(record).sort();
      work.push(new Literal('}'));
      for (let i = keys.length - 1; i >= 0; i--) {
        work.push(record[keys[i]], new Literal(`${JSON.stringify(keys[i])}:`));
        if (i > 0) work.push(new Literal(','));
      }
      work.push(new Literal('{'));
    } else {
      out.push(JSON.stringify(value) ?? 'null');
    }
  }
  return out.join('');
}

export const requestHash = (body: unknown): string => createHash('sha256').update(canonicalJson(body)).digest('hex');

export type Remembered = { kind: 'replay'; certificateId: string } | { kind: 'expired' } | { kind: 'none' };

/** What an earlier success under this key says: replay its id, 409 for another body, or nothing (or expired). */
export async function lookUpIdempotencyKey(db: Db | Tx, scope: IdempotencyScope, hash: string, now: Date): Promise<Remembered> {
  const row = await db.idempotencyKey.findUnique({ where: { domainId_endpoint_key: scope } });
  if (!row) return { kind: 'none' };
  if (row.createdAt.getTime() <= now.getTime() - IDEMPOTENCY_WINDOW_MS) return { kind: 'expired' };
  if (row.requestHash !== hash) {
    throw errors.idempotencyConflict('Idempotency-Key was already used with a different request body');
  }
  return { kind: 'replay', certificateId: row.certificateId };
}

/**
 * Claims the key for `certificateId` inside the issuing transaction, first dropping a row past the 24-hour window.
 * A concurrent claim waits on the primary key and then fails with P2002.
 */
export async function claimIdempotencyKey(
  tx: Tx,
  scope: IdempotencyScope,
  hash: string,
  certificateId: string,
  now: Date,
  previous: Remembered,
): Promise<void> {
  if (previous.kind === 'expired') await tx.idempotencyKey.deleteMany({ where: scope });
  await tx.idempotencyKey.create({ data: { ...scope, requestHash: hash, certificateId, createdAt: now } });
}

export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string })?.code === 'P2002';
}

/** Postgres aborted the transaction to break a deadlock; it may simply be run again. */
export function isDeadlock(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return code === 'P2034' || /deadlock detected/i.test(message ?? '');
}
