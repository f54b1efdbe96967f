/**
 * The state changes of an existing CA (§4.2.7-4.2.9, §6.1): disable, enable, scheduled deletion and restore. Each is
 * one transaction that locks the CA row FOR UPDATE, re-checks the state, writes the change, its audit event and
 * its billing hook.
 */
import { type Clock, DAY_MS } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import { lockCaRows } from '../../db/locks.ts';
import { retryingConflicts } from '../../db/tx.ts';
import { type CertificateAuthority, Prisma } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import type { KeyStores } from '../../keystore/index.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { RequestContext, Tx } from '../context.ts';
import type { CrlService } from '../revocation/crl-service.ts';
import { isCaCertificateRevoked } from '../revocation/revocation-service.ts';
import { disableSubordinates } from './ca-descendants.ts';
import { effectiveStatus, existingCa, requireStatus, type CaStatus } from './ca-rules.ts';
import { findOwnCa } from './ca-store.ts';
import { destroyRemovedCaKey, type HeldKey } from './key-destruction.ts';

export interface CaTransitionDeps {
  db: Db;
  clock: Clock;
  keyStores: KeyStores;
  billing: Pick<BillingHooks, 'startPendingDeletion' | 'endPendingDeletionByRestore'>;
  crls: Pick<CrlService, 'signStale'>;
  /** A CA id or URN of the caller's, to its id (`field` names the parameter in messages). */
  resolve: (ctx: RequestContext, reference: string, field?: string) => string;
}

export function createCaTransitions({ db, clock, keyStores, billing, crls, resolve }: CaTransitionDeps) {
  /**
   * One locked, audited transition of an existing CA. A CRL that a revocation under this CA still waits for (its
   * signing at the end of the revoke failed) is signed first: no state change outruns a revocation (issue #21).
   */
  async function transition(
    ctx: RequestContext,
    reference: string,
    action: string,
    // biome-ignore lint/suspicious/noConfusingVoidType: a change returns the audit detail, or nothing
    change: (tx: Tx, row: CertificateAuthority, status: CaStatus, now: Date) => Promise<Record<string, unknown> | void>,
  ): Promise<void> {
    const caId = resolve(ctx, reference);
    await findOwnCa(db, ctx, caId, clock.now());
    try {
      await crls.signStale(caId);
    } catch (error) {
      throw errors.unavailable('a revocation under this CA waits for its CRL, which cannot be signed now; retry shortly', error);
    }
    // A transition locks its row, then the CAs above it (enable) or below it (delete): two such transitions on one
    // chain can deadlock, and Postgres aborts one, which runs again.
    await retryingConflicts(() =>
      db.$transaction(async (tx) => {
        await lockCaRows(tx, [caId], 'update');
        // Judged at the time the lock is held: a restore that waited past delete_time behind the deletion job (or
        // another restore) must find the CA removed, as every other caller is told from then on.
        const now = clock.now();
        const row = await findOwnCa(tx, ctx, caId, now);
        const detail = await change(tx, row, effectiveStatus(row, now), now);
        await recordAudit(tx, ctx, { action, resourceType: 'CA', resourceId: caId, detail: detail ?? undefined });
      }),
    );
  }

  const disable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:disable', async (tx, row, status) => {
      requireStatus(row, status, ['ACTIVED'], 'disable');
      await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'DISABLED' } });
    });

  const enable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:enable', async (tx, row, status, now) => {
      requireStatus(row, status, ['DISABLED'], 'enable');
      await refuseUnderUnusableIssuers(tx, row, now);
      if (await isCaCertificateRevoked(tx, row)) {
        throw errors.conflictingState('the CA certificate is revoked; the CA cannot be enabled again');
      }
      await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'ACTIVED' } });
    });

  /**
   * §4.2.8: a PENDING CA is removed at once, its key destroyed after commit (a failure leaves the reference for the
   * ca-deletion job to retry); others wait `pendingDays`, keeping their key for restore.
   */
  async function remove(ctx: RequestContext, reference: string, pendingDays: number): Promise<void> {
    let removedKey: HeldKey | undefined;
    await transition(ctx, reference, 'pca:ca:delete', async (tx, row, status, now) => {
      // An attempt Postgres aborted (retryingConflicts) kept nothing: a retry may find the CA no longer PENDING.
      removedKey = undefined;
      requireStatus(row, status, ['PENDING', 'DISABLED', 'EXPIRED'], 'delete');
      if (status === 'PENDING') {
        await tx.certificateAuthority.update({
          where: { id: row.id },
          data: { status: 'DELETED', deleteTime: now, statusBeforeDelete: 'PENDING', removedAt: now },
        });
        await tx.tag.deleteMany({ where: { resourceType: 'CA', resourceId: row.id } });
        removedKey = row;
        return { removed: true };
      }
      await disableSubordinates(tx, ctx, row.id, `issuer ${row.id} deleted`, now);
      const deleteTime = new Date(now.getTime() + pendingDays * DAY_MS);
      const updated = await tx.certificateAuthority.update({
        where: { id: row.id },
        data: { status: 'DELETED', deleteTime, statusBeforeDelete: status },
      });
      if (updated.chargingMode === 1) await billing.startPendingDeletion(tx, updated, now);
      return { pending_days: pendingDays, delete_time: deleteTime.getTime() };
    });
    if (removedKey) await destroyRemovedCaKey(db, keyStores, removedKey).catch(() => undefined);
  }

  const restore = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:restore', async (tx, row, status, now) => {
      requireStatus(row, status, ['DELETED'], 'restore');
      const expired = row.notAfter !== null && row.notAfter.getTime() <= now.getTime();
      const updated = await tx.certificateAuthority.update({
        where: { id: row.id },
        data: { status: expired ? 'EXPIRED' : 'DISABLED', deleteTime: null, statusBeforeDelete: null },
      });
      if (updated.chargingMode === 1) await billing.endPendingDeletionByRestore(tx, updated, now);
      return { status: updated.status };
    });

  return { disable, enable, remove, restore };
}

/**
 * A subordinate is enabled only under issuers that all exist, none deleted and none with its own certificate
 * revoked, up to the root: the issuers' rows (issuer_id never changes once a CA has its certificate) are locked FOR
 * SHARE meanwhile, in one statement, so a concurrent delete or revoke above waits or is waited for.
 */
export async function refuseUnderUnusableIssuers(tx: Tx, row: CertificateAuthority, now: Date): Promise<void> {
  if (!row.issuerId) return;
  const chain = (await tx.$queryRaw<{ id: string }[]>(issuerChainSql(row.issuerId))).map(({ id }) => id);
  await lockCaRows(tx, chain, 'share');
  const existing = await tx.certificateAuthority.findMany({
    where: { id: { in: chain }, ...existingCa(now) },
    select: { id: true, issuerId: true, serialNumber: true, status: true },
  });
  const byId = new Map(existing.map((ca) => [ca.id, ca]));
  for (const [depth, id] of chain.entries()) {
    const name = depth === 0 ? `the issuing CA ${id}` : `the CA ${id} above its issuer`;
    const issuer = byId.get(id);
    if (!issuer) throw errors.conflictingState(`${name} no longer exists: no CA under it can be made active`);
    if (issuer.status === 'DELETED') {
      throw errors.conflictingState(`${name} is deleted: no CA under it can be made active (restore that CA first)`);
    }
    if (await isCaCertificateRevoked(tx, issuer)) {
      throw errors.conflictingState(`the certificate of ${name} is revoked: no CA under it can be made active`);
    }
  }
}

/**
 * The ids of an issuer and of the CAs above it, nearest first, up to the root: one whose row is gone ends the chain
 * (its id still in it, for the caller to refuse), and so does a loop in issuer_id, were there one (the path).
 */
function issuerChainSql(issuerId: string): Prisma.Sql {
  return Prisma.sql`
    WITH RECURSIVE chain(id, depth, path) AS (
      SELECT ${issuerId}::uuid, 1, ARRAY[${issuerId}::uuid]
      UNION ALL
      SELECT ca.issuer_id, chain.depth + 1, chain.path || ca.issuer_id
      FROM chain JOIN certificate_authorities ca ON ca.id = chain.id
      WHERE ca.issuer_id IS NOT NULL AND ca.issuer_id <> ALL (chain.path)
    )
    SELECT id::text AS id FROM chain ORDER BY depth`;
}
