/**
 * `acme-expiry`: drops used-up nonces, marks orders and authorizations past their expiry (the protocol already
 * reads them as invalid/expired), and deletes finished ACME records a week after they expired. An order naming a
 * certificate stays until a week after the certificate expired (or once it is deleted): its account downloads and
 * revokes the certificate through it (RFC 8555 §7.4.2, §7.6). Conditional updates and deletes only, so two instances running it at once do
 * no harm.
 */
import { DAY_MS } from '../../clock.ts';
import { deleteInBatches } from '../../db/batched-delete.ts';
import { Prisma } from '../../db/generated/client.ts';
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';

export const ACME_EXPIRY_JOB = 'acme-expiry';
/** Expired orders stay readable this long (clients poll them), then go with their authorizations and challenges. */
const RETENTION_MS = 7 * DAY_MS;

export function acmeExpiryJob({ db }: { db: Db }, intervalSeconds = 300, removalBatch = 1000): Job {
  return {
    name: ACME_EXPIRY_JOB,
    intervalSeconds,
    async run({ now }) {
      const nonces = await deleteInBatches(db, 'acme_nonces', Prisma.sql`expires_at <= ${now}`);
      const orders = await db.acmeOrder.updateMany({
        where: { status: { in: ['pending', 'ready'] }, expiresAt: { lte: now } },
        data: { status: 'invalid' },
      });
      const authorizations = await db.acmeAuthorization.updateMany({
        where: { status: 'pending', expiresAt: { lte: now } },
        data: { status: 'expired' },
      });
      const before = new Date(now.getTime() - RETENTION_MS);
      // Batch after batch, each in its own transaction, until one comes back short: a cap per run would let a mesh
      // renewing more orders a day than the runs remove grow the tables for good.
      let removed = 0;
      for (;;) {
        const { selected, deleted } = await db.$transaction(async (tx) => {
          const old = await tx.$queryRaw<{ id: string }[]>`
            SELECT o.id FROM acme_orders o LEFT JOIN certificates c ON c.id = o.certificate_id
            WHERE o.expires_at <= ${before} AND (c.id IS NULL OR c.deleted_at IS NOT NULL OR c.not_after <= ${before})
            LIMIT ${removalBatch}`;
          const ids = old.map(({ id }) => id);
          const authorizationIds = (await tx.acmeAuthorization.findMany({ where: { orderId: { in: ids } }, select: { id: true } })).map(
            ({ id }) => id,
          );
          await tx.acmeChallenge.deleteMany({ where: { authorizationId: { in: authorizationIds } } });
          await tx.acmeAuthorization.deleteMany({ where: { id: { in: authorizationIds } } });
          return { selected: ids.length, deleted: (await tx.acmeOrder.deleteMany({ where: { id: { in: ids } } })).count };
        });
        removed += deleted;
        if (selected < removalBatch) break;
      }
      return { nonces, expiredOrders: orders.count, expiredAuthorizations: authorizations.count, removedOrders: removed };
    },
  };
}
