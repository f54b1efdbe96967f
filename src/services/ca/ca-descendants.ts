/**
 * The CAs below a CA, disabled when it is deleted, revoked or released: its own module, so that the revocation
 * service and the CA transitions, which use each other's rules, do not import each other.
 */
import { Prisma } from '../../db/generated/client.ts';
import { lockCaRows } from '../../db/locks.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { RequestContext, Tx } from '../context.ts';
import { existingCa, NOT_CSR_ISSUED } from './ca-rules.ts';

/**
 * A deleted CA revokes nothing (§4.4.4 refuses it) and, once removed, its key is destroyed and its CRL and OCSP stop
 * answering; a revoked CA's certificate no longer validates anything under it: a CA anywhere below either issuing
 * meanwhile would be a CA nobody can revoke, or one whose chain does not validate. Deleting or revoking a CA (or a
 * prepaid CA's release, ca-jobs.ts) therefore disables every ACTIVED descendant (those holding their key here; a
 * CSR-issued intermediate is a certificate like any other), each with its own audit event (a grandchild's reason
 * also names its own issuer); they are enabled again only under a chain of live issuers.
 *
 * Locks: the caller holds the CA's row. Only the descendants to disable are locked, FOR UPDATE, after it, in id order
 * in one statement (db/locks.ts), as issuance takes its issuers' rows. An enable below holds its own row and then
 * waits for the CAs above it (refuseUnderUnusableIssuers): against this walk that can deadlock, and Postgres aborts one
 * of the two, which runs again (retryingConflicts, test/ca/descendants-race.test.ts). A CA created under one of them
 * while the walk ran (its creation holds its issuer FOR SHARE), or enabled before the caller's lock, is found by the
 * walk run again once they are locked.
 */
export async function disableSubordinates(tx: Tx, ctx: RequestContext, caId: string, reason: string, now: Date): Promise<void> {
  const done = new Set<string>();
  const live = (ids: string[]) =>
    tx.certificateAuthority.findMany({
      where: { id: { in: ids }, ...NOT_CSR_ISSUED, ...existingCa(now), status: 'ACTIVED' },
      select: { id: true, issuerId: true },
      orderBy: { id: 'asc' },
    });
  for (;;) {
    const below = await tx.$queryRaw<{ id: string }[]>(descendantsSql(caId));
    const found = (await live(below.map(({ id }) => id).filter((id) => !done.has(id)))).map(({ id }) => id);
    if (found.length === 0) return;
    await lockCaRows(tx, found, 'update');
    // Read again under the locks: one disabled meanwhile is left as it is.
    const locked = await live(found);
    for (const id of found) done.add(id);
    if (locked.length === 0) continue;
    await tx.certificateAuthority.updateMany({ where: { id: { in: locked.map(({ id }) => id) } }, data: { status: 'DISABLED' } });
    for (const { id, issuerId } of locked) {
      await recordAudit(tx, ctx, {
        action: 'pca:ca:disable',
        resourceType: 'CA',
        resourceId: id,
        detail: { reason: issuerId === caId ? reason : `${reason} (above its issuer ${issuerId})` },
      });
    }
  }
}

/** The ids of the CAs below a CA, at any depth (UNION: a loop in issuer_id, were there one, ends the walk). */
function descendantsSql(caId: string): Prisma.Sql {
  return Prisma.sql`
    WITH RECURSIVE descendants(id) AS (
      SELECT id FROM certificate_authorities WHERE issuer_id = ${caId}::uuid
      UNION
      SELECT child.id FROM certificate_authorities child JOIN descendants parent ON child.issuer_id = parent.id
    )
    SELECT id::text AS id FROM descendants`;
}
