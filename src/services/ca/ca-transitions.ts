/**
 * The state changes of an existing CA (§4.2.7-4.2.9, §6.1): disable, enable, scheduled deletion and restore. Each is
 * one transaction that locks the CA row FOR UPDATE, re-checks the state, writes the change, its audit event and
 * its billing hook.
 */
import { type Clock, DAY_MS } from '../../clock.ts';
import type { Db } from '../../db/database.ts';
import { lockCaRows } from '../../db/locks.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { errors } from '../../errors.ts';
import type { KeyStores } from '../../keystore/index.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { RequestContext, Tx } from '../context.ts';
import type { CrlService } from '../revocation/crl-service.ts';
import { effectiveStatus, existingCa, NOT_CSR_ISSUED, requireStatus, type CaStatus } from './ca-rules.ts';
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
    await db.$transaction(async (tx) => {
      await lockCaRows(tx, [caId], 'update');
      // Judged at the time the lock is held: a restore that waited past delete_time behind the deletion job (or
      // another restore) must find the CA removed, as every other caller is told from then on.
      const now = clock.now();
      const row = await findOwnCa(tx, ctx, caId, now);
      const detail = await change(tx, row, effectiveStatus(row, now), now);
      await recordAudit(tx, ctx, { action, resourceType: 'CA', resourceId: caId, detail: detail ?? undefined });
    });
  }

  const disable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:disable', async (tx, row, status) => {
      requireStatus(row, status, ['ACTIVED'], 'disable');
      await tx.certificateAuthority.update({ where: { id: row.id }, data: { status: 'DISABLED' } });
    });

  const enable = (ctx: RequestContext, reference: string) =>
    transition(ctx, reference, 'pca:ca:enable', async (tx, row, status, now) => {
      requireStatus(row, status, ['DISABLED'], 'enable');
      await refuseUnderDeletedIssuer(tx, row, now);
      if (row.issuerId && row.serialNumber) {
        const revoked = await tx.revocation.findUnique({
          where: { issuerId_serialNumber: { issuerId: row.issuerId, serialNumber: row.serialNumber } },
        });
        if (revoked) throw errors.conflictingState('the CA certificate is revoked; the CA cannot be enabled again');
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
 * A deleted CA revokes nothing (§4.4.4 refuses it) and, once removed, its key is destroyed and its CRL and OCSP stop
 * answering: a subordinate issuing meanwhile would be a CA nobody can revoke. Deleting a CA (or a prepaid CA's
 * release, ca-jobs.ts) therefore disables its ACTIVED subordinates (those holding their key here; a CSR-issued
 * intermediate is a certificate like any other), each with its own audit event; they are enabled again only under a
 * live issuer.
 */
export async function disableSubordinates(tx: Tx, ctx: RequestContext, issuerId: string, reason: string, now: Date): Promise<void> {
  const live = await tx.certificateAuthority.findMany({
    where: { issuerId, ...NOT_CSR_ISSUED, ...existingCa(now), status: 'ACTIVED' },
    select: { id: true },
  });
  if (live.length === 0) return;
  await tx.certificateAuthority.updateMany({ where: { id: { in: live.map(({ id }) => id) } }, data: { status: 'DISABLED' } });
  for (const { id } of live) {
    await recordAudit(tx, ctx, {
      action: 'pca:ca:disable',
      resourceType: 'CA',
      resourceId: id,
      detail: { reason },
    });
  }
}

/** A subordinate is enabled only under an issuer that is not deleted (the issuer's row is locked meanwhile). */
async function refuseUnderDeletedIssuer(tx: Tx, row: CertificateAuthority, now: Date): Promise<void> {
  if (!row.issuerId) return;
  await lockCaRows(tx, [row.issuerId], 'share');
  const issuer = await tx.certificateAuthority.findFirst({ where: { id: row.issuerId, ...existingCa(now) }, select: { status: true } });
  if (!issuer) throw errors.conflictingState(`the issuing CA ${row.issuerId} no longer exists: a CA under it cannot be enabled`);
  if (issuer.status === 'DELETED') {
    throw errors.conflictingState(`the issuing CA ${row.issuerId} is deleted: a CA under it cannot be enabled (restore the issuer first)`);
  }
}
