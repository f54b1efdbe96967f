/**
 * A CA's issuance policy (issue #19): `GET`/`PUT …/{ca_id}/issuance-policy`. The document is validated and
 * normalised before the transaction; the change locks the CA row FOR UPDATE (in-flight issuances hold it FOR
 * SHARE, so each sees either the old policy or the new one) and is audited with the previous and new documents.
 */
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { Clock } from '../../clock.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { RequestContext } from '../context.ts';
import { jsonOrNull } from '../json-column.ts';
import {
  parseIssuancePolicy,
  policyDocument,
  storedIssuancePolicy,
  storedPolicyDocument,
  type IssuancePolicyDocument,
} from '../policy/index.ts';
import { resolveCaReference } from '../urn.ts';
import { effectiveStatus, requireStatus } from './ca-rules.ts';
import { findOwnCa, lockOwnCa } from './ca-store.ts';

export interface IssuancePolicyServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region'>;
}

export function createIssuancePolicyService({ db, clock, config }: IssuancePolicyServiceDeps) {
  const resolve = (ctx: RequestContext, reference: string) =>
    resolveCaReference(reference, { region: config.region, domainId: ctx.domainId, field: 'ca_id' });

  return {
    /** Every field present; a CA without a policy reads as the empty document. */
    async show(ctx: RequestContext, reference: string): Promise<IssuancePolicyDocument> {
      const row = await findOwnCa(db, ctx, resolve(ctx, reference), clock.now());
      return policyDocument(storedIssuancePolicy(row.issuancePolicy));
    },

    /** Replaces the policy (`{}` removes it); refused for a DELETED CA and for a CSR-issued one (it never issues here). */
    async replace(ctx: RequestContext, reference: string, document: unknown): Promise<IssuancePolicyDocument> {
      const caId = resolve(ctx, reference);
      const policy = parseIssuancePolicy(document);
      const stored = policy === null ? null : policyDocument(policy);
      await db.$transaction(async (tx) => {
        const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
        requireStatus(row, effectiveStatus(row, clock.now()), ['PENDING', 'ACTIVED', 'DISABLED', 'EXPIRED'], 'an issuance policy');
        await tx.certificateAuthority.update({ where: { id: caId }, data: { issuancePolicy: jsonOrNull(stored) } });
        await recordAudit(tx, ctx, {
          action: 'pca:ca:setIssuancePolicy',
          resourceType: 'CA',
          resourceId: caId,
          detail: { previous: storedPolicyDocument(row.issuancePolicy), issuance_policy: stored },
        });
      });
      return policyDocument(policy);
    },
  };
}

export type IssuancePolicyService = ReturnType<typeof createIssuancePolicyService>;
