/**
 * Expiry jobs delete in statements of a bounded size: one statement over a large backlog (an hour of keyed issuance
 * at a thousand a second is millions of rows) could pass the pool's statement bound (DATABASE_QUERY_TIMEOUT_MS) and
 * then fail on every run while the backlog grew.
 */
import type { Db } from './database.ts';
import { Prisma } from './generated/client.ts';

export const DELETE_BATCH_ROWS = 10_000;

/**
 * Deletes the rows of `table` where `condition` holds, `batchRows` per statement, until a statement deletes fewer;
 * returns how many went. Each statement picks its rows by ctid and stops at `batchRows` matches: with an index on
 * the condition's column it reads no more than it deletes, without one it scans until it has them.
 */
export async function deleteInBatches(db: Db, table: string, condition: Prisma.Sql, batchRows = DELETE_BATCH_ROWS): Promise<number> {
  const from = Prisma.raw(`"${table}"`);
  let deleted = 0;
  for (;;) {
    const count =
      await db.$executeRaw`DELETE FROM ${from} WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${from} WHERE ${condition} LIMIT ${batchRows}))`;
    deleted += count;
    if (count < batchRows) return deleted;
  }
}
