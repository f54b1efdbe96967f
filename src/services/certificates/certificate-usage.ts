/**
 * The CERTIFICATE quota's `used` per domain, as a counter row the issuing and deleting transactions keep (one row
 * read or written instead of a count over the domain's certificates). Taking from it locks the domain's row until
 * commit, so concurrent issuances of a domain can never together exceed the quota.
 */
import { runnerOf, type Executor } from '../../db/tx.ts';
import { AppError, ErrorCode } from '../../errors.ts';
import { CERTIFICATES_USED, RELEASE_CERTIFICATE_QUOTA, TAKE_CERTIFICATE_QUOTA } from './issuance-sql.ts';

/** 400 PCA.00020001 like any used-up quota (§7); its own class so ACME can tell it from a refusal of the CSR. */
export class CertificateQuotaUsedUp extends AppError {
  constructor(quota: number) {
    super(400, ErrorCode.InvalidParameter, `the certificate quota of ${quota} is used up`);
  }
}

export const certificateQuotaUsedUp = (quota: number) => new CertificateQuotaUsedUp(quota);

/** Counts `count` new certificates against `quota`; false (and nothing counted) when that would exceed it. */
export async function takeCertificateQuota(tx: Executor, domainId: string, count: number, quota: number): Promise<boolean> {
  return (await runnerOf(tx)(TAKE_CERTIFICATE_QUOTA, [domainId, count, quota])).length > 0;
}

/** Deleted (or not issued after all) certificates no longer count. */
export async function releaseCertificateQuota(tx: Executor, domainId: string, count = 1): Promise<void> {
  await runnerOf(tx)(RELEASE_CERTIFICATE_QUOTA, [domainId, count]);
}

export async function certificatesUsed(db: Executor, domainId: string): Promise<number> {
  const [row] = await runnerOf(db)<{ used: number }>(CERTIFICATES_USED, [domainId]);
  return row?.used ?? 0;
}
