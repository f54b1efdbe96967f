/**
 * The signature replay cache (issue #13 item 10): a signed mutating request runs at most once. Its fingerprint
 * (sdk-hmac.ts SignatureUse) is inserted with ON CONFLICT DO NOTHING; only the request whose insert wrote the row
 * goes on, so concurrent copies on any instance or Lambda container race on the primary key and one wins.
 *
 * A row is needed only while its signature could still pass verification: `expires_at` is X-Sdk-Date plus the
 * accepted skew, and the `signature-expiry` job deletes rows past it (with a margin for the clocks of other
 * instances, which judge X-Sdk-Date by their own time).
 */
import type { SignatureUse } from '../../auth/sdk-hmac.ts';
import { DELETE_BATCH_ROWS, deleteInBatches } from '../../db/batched-delete.ts';
import type { Db } from '../../db/database.ts';
import type { SqlRunner } from '../../db/tx.ts';
import { Prisma } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import type { Job } from '../../jobs/job-runner.ts';
import { CLAIM_SIGNATURE } from './access-keys-sql.ts';

export const SIGNATURE_EXPIRY_JOB = 'signature-expiry';
/** How far behind the job's clock another instance's may be: its rows are kept that much longer. */
export const CLOCK_MARGIN_MS = 5 * 60_000;

/** Records the signature's single use; a second use (a replay) is refused with 401 APIG.0303. */
export async function claimSignature(sql: SqlRunner, use: SignatureUse): Promise<void> {
  const claimed = await sql(CLAIM_SIGNATURE, [use.fingerprint, use.validUntil]);
  if (claimed.length === 0) {
    throw errors.authenticationFailed(
      'Incorrect app authentication information: this signature was already used (a replayed request); sign each request anew, with a new X-Sdk-Date',
    );
  }
}

export function signatureExpiryJob({ db }: { db: Db }, intervalSeconds = 300, batchRows = DELETE_BATCH_ROWS): Job {
  return {
    name: SIGNATURE_EXPIRY_JOB,
    intervalSeconds,
    async run({ now }) {
      const cutoff = new Date(now.getTime() - CLOCK_MARGIN_MS);
      return { deleted: await deleteInBatches(db, 'seen_signatures', Prisma.sql`expires_at < ${cutoff}`, batchRows) };
    },
  };
}
