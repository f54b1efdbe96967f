/**
 * Multi-row inserts for the issuance hot path. Prisma's createMany spends about a millisecond of CPU per
 * certificate row building and compiling its query; here the rows travel as one JSON parameter that Postgres
 * expands with json_populate_recordset, so a batch of any size is one short statement and one JSON.stringify.
 *
 * Rows use the Prisma model's field names (camelCase); each column is the field name in snake_case, which is how
 * every @map in prisma/schema.prisma is written. Omitted fields take their column defaults.
 */
import { createHash } from 'node:crypto';
import type { SqlStatement } from './database.ts';
import { runnerOf, type Executor } from './tx.ts';
import { columnOf } from './columns.ts';

/** The tables written this way (SQL identifiers, never user input). */
export type BulkTable = 'certificates' | 'audit_events' | 'billing_records';

/**
 * The row keyed by column names, which json_populate_recordset matches, each value in a form JSON.stringify writes
 * as Postgres reads it: bytea in its hex input form, a bigint (no JSON form) as its decimal text. Converted here
 * rather than in a replacer, which JSON.stringify would call for every value it writes, nested ones too.
 */
function byColumn(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field in row) {
    const value = row[field];
    out[columnOf(field)] =
      value instanceof Uint8Array
        ? `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`
        : value instanceof Date
          ? instantText(value)
          : typeof value === 'bigint'
            ? value.toString()
            : value;
  }
  return out;
}

let lastInstant = Number.NaN;
let lastInstantText = '';

/**
 * A Date as JSON.stringify writes it (ISO 8601, null if invalid). A batch's rows mostly share one moment (created,
 * not before, billed usage start and end): its text is made once (~1 µs a toISOString, 4 of 5 dates a certificate).
 */
function instantText(date: Date): string | null {
  const time = date.getTime();
  if (time !== lastInstant) {
    if (!Number.isFinite(time)) return null;
    lastInstant = time;
    lastInstantText = date.toISOString();
  }
  return lastInstantText;
}

const statements = new Map<string, SqlStatement>();

/** The statement of `text`, named after it (a prepared statement's name must always mean one text). */
function statementOf(text: string): SqlStatement {
  let statement = statements.get(text);
  if (!statement) {
    statement = { name: `insert-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`, text };
    statements.set(text, statement);
  }
  return statement;
}

export type BulkRows = readonly [table: BulkTable, rows: readonly Record<string, unknown>[]];

/**
 * A condition on the rows of `insertRowsWhere`: CTEs the inserts follow (their placeholders numbered from $1, then
 * the tables' from after `values`), the condition each row `r` of a table must meet, and the statement's result.
 */
export interface InsertGuard {
  with: string;
  values: unknown[];
  rowCondition(table: BulkTable): string;
  returning: string;
}

/**
 * The rows of several tables in one statement (each table's insert a data-modifying CTE of the last one): one
 * round trip instead of one per table. Within each table, the columns of the first row must be those of every row.
 */
export async function insertRows(tx: Executor, ...tables: BulkRows[]): Promise<void> {
  await insertRowsWhere(tx, undefined, ...tables);
}

/**
 * `insertRows` in the same statement as the guard's CTEs, inserting only the rows that meet its condition; the
 * guard's result rows (none without a guard).
 */
export async function insertRowsWhere<Row>(tx: Executor, guard: InsertGuard | undefined, ...tables: BulkRows[]): Promise<Row[]> {
  const filled = tables.filter(([, rows]) => rows.length > 0);
  if (filled.length === 0 && !guard) return [];
  const first = (guard?.values.length ?? 0) + 1;
  const inserts = filled.map(([table, rows], at) => {
    const list = Object.keys(rows[0]!).map(columnOf).join(', ');
    const where = guard ? ` r WHERE ${guard.rowCondition(table)}` : '';
    return `INSERT INTO ${table} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::${table}, $${first + at}::json)${where}`;
  });
  const last = guard ? guard.returning : inserts.pop()!;
  const ctes = [...(guard ? [guard.with] : []), ...inserts.map((insert, at) => `w${at} AS (${insert})`)];
  const text = ctes.length === 0 ? last : `WITH ${ctes.join(', ')} ${last}`;
  return runnerOf(tx)<Row>(statementOf(text), [...(guard?.values ?? []), ...filled.map(([, rows]) => JSON.stringify(rows.map(byColumn)))]);
}
