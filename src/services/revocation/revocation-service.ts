/**
 * Revoking certificates and subordinate CAs (§4.4.6, §4.2.7), and the per-CA CRL and OCSP settings (§4.2.9,
 * §4.2.10). A revoke is one transaction: status change, a `revocations` row (the CRL/OCSP source of truth), the
 * issuer's CRL marked stale, and the audit event (a CA's revoke also disables the CAs below it). Every statement reaches its row through a primary or unique key,
 * so the transaction costs the same whatever the number of revocations already recorded. Once it has committed
 * (OCSP answers revoked from then on), the issuer's new CRL is signed before the call returns (§4.4.6).
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CrlService } from './crl-service.ts';
import { errors } from '../../errors.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { retryingConflicts } from '../../db/tx.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { RequestContext, Tx } from '../context.ts';
import { lockOwnCa } from '../ca/ca-store.ts';
import { disableSubordinates } from '../ca/ca-descendants.ts';
import { resolveCaReference } from '../urn.ts';
import { canonicalSerialHex, isRevokingStatus, reasonCodeOf, REVOKING_STATUSES } from './revocation-rules.ts';
import { insertRevocationSql, markIssuerCrlStaleSql } from './revocation-sql.ts';

export interface RevocationServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region'>;
  metrics: Pick<Metrics, 'certificatesRevoked'>;
  crls: Pick<CrlService, 'signStale'>;
}

export interface CrlSettings {
  validDays: number;
  crlName?: string | null;
  obsBucketName?: string | null;
}

export function createRevocationService({ db, clock, config, metrics, crls }: RevocationServiceDeps) {
  /** The caller's CA, locked for the rest of the transaction; removed CAs are not found (§10.2). */
  async function lockCa(tx: Tx, context: RequestContext, reference: string) {
    const id = resolveCaReference(reference, { region: config.region, domainId: context.domainId, field: 'ca_id' });
    return lockOwnCa(tx, context, id, 'update', clock.now());
  }

  /** Records the revocation and marks the issuer's CRL stale; refuses an issuer that may no longer revoke. */
  async function recordRevocation(tx: Tx, entry: { issuerId: string; serialNumber: string; reasonCode: number; notAfter: Date }) {
    const now = clock.now();
    const [issuer] = await tx.$queryRaw<{ key_algorithm: string }[]>(markIssuerCrlStaleSql(entry.issuerId, now));
    if (!issuer) {
      throw errors.conflictingState(`the issuing CA ${entry.issuerId} is not ${REVOKING_STATUSES.join(', ')}: it can no longer revoke`);
    }
    const inserted = await tx.$executeRaw(
      insertRevocationSql({ ...entry, serialNumber: canonicalSerialHex(entry.serialNumber), revokedAt: now }),
    );
    if (inserted === 0) throw errors.conflictingState(`serial ${entry.serialNumber} is already revoked`);
    return { revokedAt: now, caKeyAlgorithm: issuer.key_algorithm };
  }

  /**
   * The revocation has committed; its issuer's CRL is signed now. A failure here leaves the CRL marked stale (the
   * job, the next reader and the issuer's next state change sign it) and tells the caller what did happen.
   */
  async function publish(issuerId: string): Promise<void> {
    try {
      await crls.signStale(issuerId);
    } catch (error) {
      throw errors.unavailable(
        'the revocation is recorded and OCSP answers revoked, but the new CRL could not be signed yet; it will be signed shortly',
        error,
      );
    }
  }

  async function revokeCertificate(context: RequestContext, certificateId: string, reason: string | undefined): Promise<void> {
    const reasonCode = reasonCodeOf(reason);
    const { caKeyAlgorithm, issuerId } = await db.$transaction(async (tx) => {
      const certificate = await tx.certificate.findFirst({
        where: { id: certificateId, domainId: context.domainId, deletedAt: null },
        select: { id: true, issuerId: true, serialNumber: true, status: true, notAfter: true },
      });
      if (!certificate) throw errors.notFound(`certificate ${certificateId}`);
      const expired = certificate.status === 'ISSUED' && certificate.notAfter.getTime() <= clock.now().getTime();
      if (certificate.status !== 'ISSUED' || expired) {
        throw errors.conflictingState(
          `certificate is ${expired ? 'EXPIRED' : certificate.status}; only ISSUED certificates can be revoked`,
        );
      }
      // Conditional on ISSUED, so of two concurrent revokes exactly one wins.
      const { count } = await tx.certificate.updateMany({ where: { id: certificate.id, status: 'ISSUED' }, data: { status: 'REVOKED' } });
      if (count === 0) throw errors.conflictingState('certificate is already revoked');
      const revocation = await recordRevocation(tx, { ...certificate, reasonCode });
      await recordAudit(tx, context, {
        action: 'pca:cert:revoke',
        resourceType: 'CERTIFICATE',
        resourceId: certificate.id,
        detail: { reason: reason ?? 'UNSPECIFIED', issuer_id: certificate.issuerId, revoked_at: revocation.revokedAt.getTime() },
      });
      return { ...revocation, issuerId: certificate.issuerId };
    });
    metrics.certificatesRevoked.inc({ ca_key_algorithm: caKeyAlgorithm });
    await publish(issuerId);
  }

  async function revokeCa(context: RequestContext, reference: string, reason: string | undefined): Promise<void> {
    const reasonCode = reasonCodeOf(reason);
    // Its CA's row, its issuer's (the CRL marked stale), then the CAs below: against a transition on the same chain
    // this can deadlock, and Postgres aborts one, which runs again.
    const { caKeyAlgorithm, issuerId } = await retryingConflicts(() =>
      db.$transaction(async (tx) => {
        const ca = await lockCa(tx, context, reference);
        if (ca.type === 'ROOT') throw errors.invalidCaType('a root CA cannot be revoked; only subordinate CAs can');
        if (!isRevokingStatus(ca.status)) {
          throw errors.conflictingState(`CA is ${ca.status}; only ${REVOKING_STATUSES.join(', ')} CAs can be revoked`);
        }
        if (!ca.issuerId || !ca.serialNumber || !ca.notAfter) {
          throw errors.conflictingState('only a CA whose parent is a CA of this service can be revoked here');
        }
        const revocation = await recordRevocation(tx, {
          issuerId: ca.issuerId,
          serialNumber: ca.serialNumber,
          notAfter: ca.notAfter,
          reasonCode,
        });
        // A revoked subordinate stops issuing for good: `enable` checks isCaCertificateRevoked. So does every CA below
        // it (their chains no longer validate), as when a CA is deleted; their rows are locked after the CA's and its
        // issuer's, in the order deletion takes them (ca-transitions.ts).
        if (ca.status === 'ACTIVED') await tx.certificateAuthority.update({ where: { id: ca.id }, data: { status: 'DISABLED' } });
        await disableSubordinates(tx, context, ca.id, `issuer ${ca.id} revoked`, revocation.revokedAt);
        await recordAudit(tx, context, {
          action: 'pca:ca:revoke',
          resourceType: 'CA',
          resourceId: ca.id,
          detail: { reason: reason ?? 'UNSPECIFIED', issuer_id: ca.issuerId, revoked_at: revocation.revokedAt.getTime() },
        });
        return { ...revocation, issuerId: ca.issuerId };
      }),
    );
    metrics.certificatesRevoked.inc({ ca_key_algorithm: caKeyAlgorithm });
    await publish(issuerId);
  }

  /** CRL and OCSP settings may change in every status but DELETED, for CAs whose key the service holds. */
  async function changeSettings(
    context: RequestContext,
    reference: string,
    action: string,
    data: { crlEnabled?: boolean; crlName?: string | null; crlValidDays?: number; obsBucketName?: string | null; ocspEnabled?: boolean },
  ): Promise<void> {
    await db.$transaction(async (tx) => {
      const ca = await lockCa(tx, context, reference);
      if (ca.status === 'DELETED') throw errors.conflictingState('CA is DELETED; restore it before changing its CRL or OCSP settings');
      if (ca.genMode === 'CSR') {
        throw errors.conflictingState(
          'this CA was issued from a CSR: its key is not held here, so the service publishes no CRL or OCSP for it',
        );
      }
      await tx.certificateAuthority.update({ where: { id: ca.id }, data });
      await recordAudit(tx, context, { action, resourceType: 'CA', resourceId: ca.id, detail: data });
    });
  }

  return {
    revokeCertificate,
    revokeCa,

    enableCrl(context: RequestContext, reference: string, settings: CrlSettings): Promise<void> {
      const caId = resolveCaReference(reference, { region: config.region, domainId: context.domainId, field: 'ca_id' });
      return changeSettings(context, caId, 'pca:ca:crl:enable', {
        crlEnabled: true,
        crlValidDays: settings.validDays,
        crlName: settings.crlName || caId,
        obsBucketName: settings.obsBucketName ?? null,
      });
    },

    disableCrl(context: RequestContext, reference: string): Promise<void> {
      return changeSettings(context, reference, 'pca:ca:crl:disable', { crlEnabled: false });
    },

    setOcspSwitch(context: RequestContext, reference: string, enabled: boolean): Promise<void> {
      return changeSettings(context, reference, 'pca:ca:ocsp:switch', { ocspEnabled: enabled });
    },
  };
}
export type RevocationService = ReturnType<typeof createRevocationService>;

/**
 * Whether a CA's own certificate has been revoked under its issuer (§4.2.7: such a CA is never enabled again).
 * SQL: SELECT 1 FROM revocations WHERE issuer_id = $issuer_id AND serial_number = $serial (primary key lookup).
 */
export async function isCaCertificateRevoked(tx: Tx | Db, ca: { issuerId: string | null; serialNumber: string | null }): Promise<boolean> {
  if (!ca.issuerId || !ca.serialNumber) return false;
  const row = await tx.revocation.findUnique({
    where: { issuerId_serialNumber: { issuerId: ca.issuerId, serialNumber: canonicalSerialHex(ca.serialNumber) } },
    select: { issuerId: true },
  });
  return row !== null;
}
