/**
 * The CERTIFICATE quota's `used` per domain, as a counter row the issuing and deleting transactions keep (one row
 * read or written instead of a count over the domain's certificates). Taking from it locks the domain's row until
 * commit, so concurrent issuances of a domain can never together exceed the quota.
 */
import type { Db } from '../../db/database.ts';
import { errors } from '../../errors.ts';
import type { Tx } from '../context.ts';

export const certificateQuotaUsedUp = (quota: number) => errors.conflictingState(`the certificate quota of ${quota} is used up`);

/** Counts `count` new certificates against `quota`; false (and nothing counted) when that would exceed it. */
export async function takeCertificateQuota(tx: Tx, domainId: string, count: number, quota: number): Promise<boolean> {
  const rows = await tx.$queryRaw<unknown[]>`
    INSERT INTO domain_certificate_usage (domain_id, used)
    SELECT ${domainId}, ${count}::int WHERE ${count}::int <= ${quota}::int
    ON CONFLICT (domain_id) DO UPDATE SET used = domain_certificate_usage.used + EXCLUDED.used
    WHERE domain_certificate_usage.used + EXCLUDED.used <= ${quota}::int
    RETURNING used`;
  return rows.length > 0;
}

/** Deleted (or not issued after all) certificates no longer count. */
export async function releaseCertificateQuota(tx: Tx, domainId: string, count = 1): Promise<void> {
  await tx.$executeRaw`UPDATE domain_certificate_usage SET used = used - ${count}::int WHERE domain_id = ${domainId}`;
}

export async function certificatesUsed(db: Db | Tx, domainId: string): Promise<number> {
  const row = await db.domainCertificateUsage.findUnique({ where: { domainId } });
  return row?.used ?? 0;
}
