/**
 * The REST side of ACME (issue #16): a CA's ACME policy (`GET`/`PUT …/{ca_id}/acme-policy`) and its External
 * Account Binding keys (`…/{ca_id}/acme/eab`). An EAB key binds every account made with it to the caller's domain
 * and this CA; its HMAC key is shown once and stored sealed. Each change is one audited transaction under the CA
 * row's FOR UPDATE lock, so a key is never created against a policy being switched off.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { errors } from '../../errors.ts';
import { eabSealingAad, type Sealer } from '../../keystore/sealing.ts';
import { recordAudit } from '../audit/audit-log.ts';
import { effectiveStatus, requireStatus } from '../ca/ca-rules.ts';
import { findOwnCa, lockOwnCa } from '../ca/ca-store.ts';
import type { RequestContext } from '../context.ts';
import { jsonOrNull } from '../json-column.ts';
import { resolveCaReference } from '../urn.ts';
import { parseAcmePolicy, storedAcmePolicy, type AcmePolicyDocument } from './acme-policy.ts';

export interface AcmeAdminServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl'>;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
}

export interface EabKeyObject {
  kid: string;
  ca_id: string;
  directory_url: string;
  status: 'ACTIVE' | 'REVOKED';
  create_time: number;
  revoke_time: number | null;
}

/**
 * The ACME directory URL of a CA by `reference` (its id, or the reference a request named: escaped, as a request may
 * put any text there, and the URL goes into the Link header of the answer).
 */
export const directoryUrl = (publicBaseUrl: string, reference: string): string =>
  `${publicBaseUrl}/acme/${encodeURIComponent(reference)}/directory`;

export function createAcmeAdminService({ db, clock, config, sealer }: AcmeAdminServiceDeps) {
  const resolve = (ctx: RequestContext, reference: string) =>
    resolveCaReference(reference, { region: config.region, domainId: ctx.domainId, field: 'ca_id' });
  const eabObject = (row: { kid: string; caId: string; createdAt: Date; revokedAt: Date | null }): EabKeyObject => ({
    kid: row.kid,
    ca_id: row.caId,
    directory_url: directoryUrl(config.publicBaseUrl, row.caId),
    status: row.revokedAt ? 'REVOKED' : 'ACTIVE',
    create_time: row.createdAt.getTime(),
    revoke_time: row.revokedAt?.getTime() ?? null,
  });

  return {
    async showPolicy(ctx: RequestContext, reference: string): Promise<AcmePolicyDocument> {
      return storedAcmePolicy((await findOwnCa(db, ctx, resolve(ctx, reference), clock.now())).acmePolicy);
    },

    /** Replaces the policy; refused for a DELETED CA and a CSR-issued one (its key is not held here). */
    async replacePolicy(ctx: RequestContext, reference: string, document: unknown): Promise<AcmePolicyDocument> {
      const caId = resolve(ctx, reference);
      const policy = parseAcmePolicy(document);
      await db.$transaction(async (tx) => {
        const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
        requireStatus(row, effectiveStatus(row, clock.now()), ['PENDING', 'ACTIVED', 'DISABLED', 'EXPIRED'], 'an ACME policy');
        await tx.certificateAuthority.update({ where: { id: caId }, data: { acmePolicy: jsonOrNull(policy) } });
        await recordAudit(tx, ctx, {
          action: 'pca:ca:setAcmePolicy',
          resourceType: 'CA',
          resourceId: caId,
          detail: { previous: storedAcmePolicy(row.acmePolicy), acme_policy: policy },
        });
      });
      return policy;
    },

    /** A new EAB key for this CA; the HMAC key (base64url, 256 bits) is in this answer only. */
    async createEabKey(ctx: RequestContext, reference: string): Promise<EabKeyObject & { hmac_key: string }> {
      const caId = resolve(ctx, reference);
      const kid = `eab_${randomBytes(16).toString('base64url')}`;
      const hmacKey = randomBytes(32);
      const now = clock.now();
      const row = await db.$transaction(async (tx) => {
        const ca = await lockOwnCa(tx, ctx, caId, 'share', clock.now());
        if (!storedAcmePolicy(ca.acmePolicy).enabled)
          throw errors.conflictingState('ACME is not enabled on this CA: PUT its acme-policy with "enabled": true first');
        const created = await tx.acmeEabKey.create({
          data: { kid, domainId: ctx.domainId, caId, sealedHmacKey: sealer.seal(hmacKey, eabSealingAad(kid)), createdAt: now },
        });
        await recordAudit(tx, ctx, {
          action: 'pca:acme:createEab',
          resourceType: 'ACME_EAB_KEY',
          resourceId: kid,
          detail: { ca_id: caId },
        });
        return created;
      });
      return { ...eabObject(row), hmac_key: hmacKey.toString('base64url') };
    },

    async listEabKeys(ctx: RequestContext, reference: string): Promise<{ eab_keys: EabKeyObject[] }> {
      const caId = resolve(ctx, reference);
      await findOwnCa(db, ctx, caId, clock.now());
      const rows = await db.acmeEabKey.findMany({ where: { domainId: ctx.domainId, caId }, orderBy: { createdAt: 'asc' } });
      return { eab_keys: rows.map(eabObject) };
    },

    /** Revokes the key and deactivates the accounts bound with it: they can no longer order. */
    async revokeEabKey(ctx: RequestContext, reference: string, kid: string): Promise<void> {
      const caId = resolve(ctx, reference);
      const now = clock.now();
      await db.$transaction(async (tx) => {
        const { count } = await tx.acmeEabKey.updateMany({
          where: { kid, domainId: ctx.domainId, caId, revokedAt: null },
          data: { revokedAt: now },
        });
        if (count === 0) throw errors.notFound(`EAB key ${kid}`);
        const accounts = await tx.acmeAccount.updateMany({ where: { eabKid: kid, status: 'valid' }, data: { status: 'deactivated' } });
        await recordAudit(tx, ctx, {
          action: 'pca:acme:revokeEab',
          resourceType: 'ACME_EAB_KEY',
          resourceId: kid,
          detail: { ca_id: caId, deactivated_accounts: accounts.count },
        });
      });
    },
  };
}

export type AcmeAdminService = ReturnType<typeof createAcmeAdminService>;
