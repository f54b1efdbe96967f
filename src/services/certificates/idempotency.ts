/**
 * Idempotent issuance (§10.8). A key is scoped to the domain and the endpoint and remembered only by a successful
 * issuance: its row is written in the issuing transaction, so concurrent requests with one key serialize on the
 * primary key and at most one issues. Bodies are compared as parsed JSON (key order and whitespace do not matter).
 */
import { createHash } from 'node:crypto';
import { DAY_MS } from '../../clock.ts';
import { DELETE_BATCH_ROWS, deleteInBatches } from '../../db/batched-delete.ts';
import type { Db } from '../../db/database.ts';
import { Prisma } from '../../db/generated/client.ts';
import { runnerOf, type Executor } from '../../db/tx.ts';
import type { Job } from '../../jobs/job-runner.ts';
import { errors } from '../../errors.ts';
import { CLAIM_IDEMPOTENCY_KEYS, LOOK_UP_IDEMPOTENCY_KEY, RELEASE_IDEMPOTENCY_KEYS } from './issuance-sql.ts';

export const IDEMPOTENCY_WINDOW_MS = DAY_MS;
export const IDEMPOTENCY_EXPIRY_JOB = 'idempotency-expiry';
/** How far behind the job's clock another instance's may be: a key it still replays is kept that much longer. */
const CLOCK_MARGIN_MS = 5 * 60_000;
const MAX_KEY_LENGTH = 64;

export interface IdempotencyScope {
  domainId: string;
  endpoint: string;
  key: string;
}

/** The header value, or undefined when absent; a repeated header, or any length outside 1-64, gets 400. */
export function checkIdempotencyKey(header: unknown): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw errors.invalidParameter('Idempotency-Key must be sent once');
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

/** The certificate id an earlier success under this key answers within 24 h; 409 for another body. */
export async function lookUpIdempotencyKey(db: Executor, scope: IdempotencyScope, hash: string, now: Date): Promise<string | undefined> {
  type Row = { request_hash: string; certificate_id: string; created_at: Date };
  const [row] = await runnerOf(db)<Row>(LOOK_UP_IDEMPOTENCY_KEY, [scope.domainId, scope.endpoint, scope.key]);
  if (!row || new Date(row.created_at).getTime() <= now.getTime() - IDEMPOTENCY_WINDOW_MS) return undefined;
  if (row.request_hash !== hash) {
    throw errors.idempotencyConflict('Idempotency-Key was already used with a different request body');
  }
  return row.certificate_id;
}

export interface IdempotencyClaim {
  scope: IdempotencyScope;
  hash: string;
  certificateId: string;
}

/** The key's identity as one string: equal for equal scopes. */
export const scopeName = ({ domainId, endpoint, key }: IdempotencyScope): string => JSON.stringify([domainId, endpoint, key]);

/**
 * Claims the keys inside the issuing transaction, in one statement, taking over rows past the 24-hour window;
 * returns the certificate ids whose key it claimed. A key claimed by a concurrent transaction waits for that
 * transaction: once it commits, the key is not claimed here and its row stays locked until this transaction
 * ends, so `lookUpIdempotencyKey` in this transaction finds its answer. Claims are made in key order (the statement
 * sorts them, as the one-statement batch's does, and a batch holds each key once), so two batches claiming
 * overlapping keys cannot deadlock. Claim before the quota row and the issuers' locks (the one-statement batch
 * claims before the quota row too), so an issuance never waits for a key while holding what the key's holder may be
 * waiting for.
 */
export async function claimIdempotencyKeys(tx: Executor, claims: IdempotencyClaim[], now: Date): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const claimed = await runnerOf(tx)<{ certificate_id: string }>(CLAIM_IDEMPOTENCY_KEYS, [claimRows(claims, now), windowStart(now)]);
  return new Set(claimed.map((row) => row.certificate_id));
}

/** The claims as CLAIM_IDEMPOTENCY_KEYS takes them: idempotency_keys rows as JSON. */
export function claimRows(claims: IdempotencyClaim[], now: Date): string {
  return JSON.stringify(
    claims.map(({ scope, hash, certificateId }) => ({
      domain_id: scope.domainId,
      endpoint: scope.endpoint,
      key: scope.key,
      request_hash: hash,
      certificate_id: certificateId,
      created_at: now,
    })),
  );
}

/** The start of the 24-hour window at `now`: a key's row created at or before it may be taken over. */
export const windowStart = (now: Date): Date => new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS);

/**
 * The answer for a key `claimIdempotencyKeys` did not claim: the certificate of the success that holds it (or 409
 * for another body). The claim statement waited for that success to commit and keeps its row locked, so it is there.
 */
export async function answerOfHeldKey(tx: Executor, scope: IdempotencyScope, hash: string, now: Date): Promise<string> {
  const certificateId = await lookUpIdempotencyKey(tx, scope, hash, now);
  if (certificateId === undefined) throw new Error(`Idempotency-Key ${scopeName(scope)} was neither claimed nor held`);
  return certificateId;
}

/** Gives back the keys of claims whose issuance was refused after all: a failure does not reserve its key. */
export async function releaseIdempotencyKeys(tx: Executor, scopes: IdempotencyScope[]): Promise<void> {
  const rows = scopes.map(({ domainId, endpoint, key }) => ({ domain_id: domainId, endpoint, key }));
  if (rows.length > 0) await runnerOf(tx)(RELEASE_IDEMPOTENCY_KEYS, [JSON.stringify(rows)]);
}

/**
 * Keys past the window answer nothing (a reuse issues anew and takes the row over), so their rows go: without this,
 * every keyed issuance left one for good. The table then holds about a window of keys, small enough to scan.
 */
export function idempotencyExpiryJob({ db }: { db: Db }, intervalSeconds = 3600, batchRows = DELETE_BATCH_ROWS): Job {
  return {
    name: IDEMPOTENCY_EXPIRY_JOB,
    intervalSeconds,
    async run({ now }) {
      const cutoff = new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS - CLOCK_MARGIN_MS);
      return { deleted: await deleteInBatches(db, 'idempotency_keys', Prisma.sql`created_at < ${cutoff}`, batchRows) };
    },
  };
}
