/**
 * Bringing CAs into being (§4.2.1-4.2.5): create, order (yearly/monthly), activate and a subordinate's CSR. A key is
 * made outside any transaction (RSA takes seconds) and destroyed when the transaction that would keep it fails. A
 * key made on a token is recorded in pending_ca_keys (committed) before the token makes it, and the transaction that
 * commits its CA deletes the record: a key the process could not destroy (killed, token out) stays recorded, and the
 * `ca-deletion` job destroys it (key-destruction.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { serialPerKey } from '../../concurrency.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { CertificateAuthority } from '../../db/generated/client.ts';
import { isUniqueViolation, mayHaveCommitted } from '../../db/errors.ts';
import { advisoryLock } from '../../db/locks.ts';
import { errors } from '../../errors.ts';
import { keyStoreSigner, type KeyStores } from '../../keystore/index.ts';
import type { GeneratedKey, KeyStore, KeyStoreKind } from '../../keystore/key-store.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../x509/algorithms.ts';
import { buildCsr } from '../../x509/csr.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { toPem } from '../../x509/pem.ts';
import { recordAudit } from '../audit/audit-log.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { RequestContext, Tx } from '../context.ts';
import { dnColumns } from '../dn-columns.ts';
import { jsonOrNull } from '../json-column.ts';
import { signCaCertificate } from './ca-certificate.ts';
import type { ActivateCaInput, CreateCaInput, OrderCaInput } from './ca-input.ts';
import { toCaObject } from './ca-mapper.ts';
import { MAX_SUBORDINATE_YEARS, NOT_CSR_ISSUED, effectiveStatus, existingCa, requireStatus, validityWindow } from './ca-rules.ts';
import { bytesColumn, crlColumns, signsNow, specOf, storedSpecInput, type CaSpec } from './ca-spec.ts';
import { findOwnCa, lockOwnCa } from './ca-store.ts';
import { caSigner } from './issuer.ts';

export interface CaLifecycleDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'keyStore' | 'quotas'>;
  keyStores: KeyStores;
  billing: Pick<BillingHooks, 'startBillableUsage' | 'recordPrepaidOrder'>;
  /** A CA id or URN of the caller's, to its id (`field` names the parameter in messages). */
  resolve: (ctx: RequestContext, reference: string, field?: string) => string;
  log: { warn(details: object, message: string): void };
}

/** A key just made for a CA: `recorded` when pending_ca_keys holds its reference until the CA commits. */
interface NewKey extends GeneratedKey {
  recorded: boolean;
}

export function createCaLifecycle({ db, clock, config, keyStores, billing, resolve, log }: CaLifecycleDeps) {
  const signingDeps = { config, keyStores };
  const keyStoreKind = (): KeyStoreKind => config.keyStore.defaultKind;
  /**
   * One CA key generation per domain at a time in this process. A PKCS#11 generation runs alone on the token (every
   * signature of the process waits for it, pkcs11-key-store.ts): a burst of one tenant's creations queued that many
   * generations ahead of everyone's signatures, which now wait for at most one.
   */
  const generationTurn = serialPerKey();
  /** Per domain, the CAs this process is creating: past the early quota check, not yet committed or failed. */
  const creating = new Map<string, Set<string>>();
  const creatingIn = (domainId: string): string[] => [...(creating.get(domainId) ?? [])];

  /**
   * Refuses what would exceed the CA quota, counting `inFlight` (ids of CAs being created, stored or not yet) once;
   * unlocked, it is also the early check before making a key.
   */
  async function refuseOverQuota(reader: Db | Tx, ctx: RequestContext, count: number, inFlight: string[] = []): Promise<void> {
    const stored = await reader.certificateAuthority.count({
      where: {
        domainId: ctx.domainId,
        AND: [existingCa(clock.now()), NOT_CSR_ISSUED],
        ...(inFlight.length > 0 && { id: { notIn: inFlight } }),
      },
    });
    const used = stored + inFlight.length;
    if (used + count > config.quotas.ca) {
      const detail = inFlight.length > 0 ? `, ${inFlight.length} of them being created` : '';
      throw errors.conflictingState(`the CA quota is used up (${used} of ${config.quotas.ca}${detail})`);
    }
  }

  /** Serializes quota checks of one domain, then refuses what would exceed the quota. */
  async function reserveQuota(tx: Tx, ctx: RequestContext, count: number): Promise<void> {
    await advisoryLock(tx, 'caQuota', ctx.domainId);
    await refuseOverQuota(tx, ctx, count);
  }

  /**
   * Makes the key of CA `caId` outside any transaction (RSA generation takes seconds), in its domain's turn:
   * `precheck` runs first in that turn, given the domain's CAs this process is creating, so a request it refuses
   * makes no key. `use` must commit, calling `keepNewKey` in its transaction, or the key is destroyed.
   */
  async function withNewKey<T>(
    ctx: RequestContext,
    caId: string,
    alg: KeyAlgorithm,
    precheck: (inFlight: string[]) => Promise<void>,
    use: (key: NewKey, store: KeyStore) => Promise<T>,
  ): Promise<T> {
    const store = keyStores.get(keyStoreKind());
    let recorded: string | undefined;
    const record = async (keyRef: string) => {
      await db.pendingCaKey.create({ data: { keyRef, keyStore: store.kind, createdAt: clock.now() } });
      recorded = keyRef;
    };
    let started = false;
    let key: GeneratedKey | undefined;
    try {
      key = await generationTurn(ctx.domainId, async () => {
        // One CA id configured twice at once (a prepaid CA activated twice, say): the second would make a key for a
        // transaction bound to fail.
        if (creating.get(ctx.domainId)?.has(caId)) throw errors.conflictingState(`CA ${caId} is being configured by another request`);
        await precheck(creatingIn(ctx.domainId));
        startCreating(ctx.domainId, caId);
        started = true;
        return store.generate(alg, record);
      });
      return await use({ ...key, recorded: recorded !== undefined }, store);
    } catch (error) {
      // A connection lost before the commit was answered: the CA may be stored, holding the key. The record stays,
      // and the ca-deletion job destroys the key only if no CA row took it.
      if (recorded && mayHaveCommitted(error))
        log.warn({ keyRef: recorded }, 'a CA creation may have committed: its key is left to the ca-deletion job');
      else if (recorded) await discardRecordedKey(store, recorded);
      else if (key) await store.destroy(key.keyRef); // a software key: drops a cached copy, nothing else holds it
      throw error;
    } finally {
      if (started) stopCreating(ctx.domainId, caId);
    }
  }

  function startCreating(domainId: string, caId: string): void {
    const ids = creating.get(domainId) ?? new Set<string>();
    creating.set(domainId, ids.add(caId));
  }

  function stopCreating(domainId: string, caId: string): void {
    const ids = creating.get(domainId);
    ids?.delete(caId);
    if (ids?.size === 0) creating.delete(domainId);
  }

  /**
   * Destroys a recorded key no CA kept, then its record (gone already when the job destroyed the key first); when
   * either fails, the record stays for the job.
   */
  async function discardRecordedKey(store: KeyStore, keyRef: string): Promise<void> {
    try {
      await store.destroy(keyRef);
      await db.pendingCaKey.deleteMany({ where: { keyRef } });
    } catch (error) {
      log.warn({ err: error, keyRef }, 'the key of a CA that was not created could not be destroyed: the ca-deletion job will');
    }
  }

  /** In the transaction that commits the CA holding `key`: it is no longer pending. */
  async function keepNewKey(tx: Tx, key: NewKey): Promise<void> {
    if (!key.recorded) return;
    const { count } = await tx.pendingCaKey.deleteMany({ where: { keyRef: key.keyRef } });
    // The job took the key for left behind (the creation outlasted ORPHAN_KEY_AGE_MS) and destroyed it.
    if (count === 0) throw new Error(`the key ${key.keyRef} was destroyed as left behind before its CA was created`);
  }

  /** Columns of a CA configured from `spec` with `key`: signed and ACTIVED, or PENDING awaiting activation/import. */
  async function configuredColumns(tx: Tx, ctx: RequestContext, spec: CaSpec, key: GeneratedKey, store: KeyStore, now: Date) {
    const base = {
      type: spec.type,
      keyAlgorithm: spec.keyAlgorithm,
      signatureAlgorithm: spec.hash,
      ...dnColumns(spec.dn),
      keyStore: store.kind,
      keyRef: key.keyRef,
      publicKeySpki: bytesColumn(key.spki),
      nameConstraints: jsonOrNull(spec.nameConstraints),
    };
    if (!signsNow(spec)) {
      return {
        ...base,
        status: 'PENDING',
        genMode: 'GENERATE',
        pathLength: spec.pathLength ?? 0,
        keyUsages: spec.keyUsages ?? [],
      };
    }
    const signed = await signCaCertificate(
      tx,
      ctx,
      {
        type: spec.type,
        dn: spec.dn,
        spki: key.spki,
        ownSigner: keyStoreSigner(store, key.keyRef, spec.keyAlgorithm),
        hash: spec.hash!,
        validity: spec.validity!,
        issuerRef: spec.issuerRef ?? undefined,
        pathLength: spec.pathLength,
        keyUsages: spec.keyUsages,
        nameConstraints: spec.nameConstraints,
      },
      now,
      signingDeps,
    );
    return {
      ...base,
      status: 'ACTIVED',
      genMode: 'GENERATE',
      pathLength: signed.pathLength,
      issuerId: signed.issuerId,
      keyUsages: signed.keyUsages,
      serialNumber: signed.serialNumber,
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
      certificateDer: bytesColumn(signed.certificateDer),
    };
  }

  /** Unique (issuer, serial) collisions are astronomically rare; one retry with a fresh serial settles them. */
  async function retryingSerialCollision<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isUniqueViolation(error)) return run();
      throw error;
    }
  }

  /** A yearly/monthly CA awaiting configuration (create with ca_id); `tx` given: locked FOR UPDATE first. */
  async function unconfiguredPrepaid(reader: Db | Tx, ctx: RequestContext, caId: string, tx?: Tx): Promise<void> {
    const row = tx ? await lockOwnCa(tx, ctx, caId, 'update', clock.now()) : await findOwnCa(reader, ctx, caId, clock.now());
    if (row.chargingMode !== 0 || row.status !== 'PENDING' || row.keyRef !== null) {
      throw errors.conflictingState('ca_id must name a yearly/monthly CA that is PENDING and not yet configured');
    }
  }

  async function create(ctx: RequestContext, input: CreateCaInput): Promise<{ ca_id: string }> {
    const spec = specOf(input);
    const prepaidId = input.ca_id ? resolve(ctx, input.ca_id, 'ca_id') : null;
    // Syntax before existence (§2), as at activation; the signing transaction resolves it again.
    if (spec.issuerRef) resolve(ctx, spec.issuerRef, 'issuer_id');
    // A subordinate left PENDING keeps no validity (activation sends its own), but the one sent is judged as signing
    // would judge it, short of the issuer's bounds, rather than dropped unseen.
    if (!signsNow(spec) && spec.validity) validityWindow(spec.validity, clock.now(), MAX_SUBORDINATE_YEARS);
    const caId = prepaidId ?? randomUUID();
    // Fail fast, before making a key (RSA-4096 costs seconds of CPU), counting the domain's creations in this process
    // whose CAs are not committed yet; the transaction checks again under its lock.
    const precheck = (inFlight: string[]) => (prepaidId ? unconfiguredPrepaid(db, ctx, prepaidId) : refuseOverQuota(db, ctx, 1, inFlight));
    return withNewKey(ctx, caId, spec.keyAlgorithm, precheck, (key, store) =>
      retryingSerialCollision(() =>
        db.$transaction(async (tx) => {
          const now = clock.now();
          if (prepaidId) await unconfiguredPrepaid(tx, ctx, prepaidId, tx);
          else await reserveQuota(tx, ctx, 1);
          const columns = {
            ...(await configuredColumns(tx, ctx, spec, key, store, now)),
            ...crlColumns(input.crl_configuration, caId),
            // Absent, a yearly/monthly CA keeps the one it was ordered with (undefined leaves the column), as at activation.
            enterpriseProjectId: input.enterprise_project_id ?? (prepaidId ? undefined : '0'),
          };
          await keepNewKey(tx, key);
          const row = prepaidId
            ? await tx.certificateAuthority.update({ where: { id: caId }, data: columns })
            : await tx.certificateAuthority.create({
                data: {
                  ...columns,
                  id: caId,
                  domainId: ctx.domainId,
                  chargingMode: 1,
                  freeQuota: config.quotas.freeCertificatesPerCa,
                  createdAt: now,
                },
              });
          if (row.status === 'ACTIVED' && row.chargingMode === 1) await billing.startBillableUsage(tx, row, now);
          await recordAudit(tx, ctx, {
            action: 'pca:ca:create',
            resourceType: 'CA',
            resourceId: caId,
            detail: { type: row.type, status: row.status, prepaid: prepaidId !== null },
          });
          return { ca_id: caId };
        }),
      ),
    );
  }

  async function order(ctx: RequestContext, input: OrderCaInput): Promise<{ order_id: string; ca_ids: string[] }> {
    return db.$transaction(async (tx) => {
      const now = clock.now();
      await reserveQuota(tx, ctx, input.subscription_num);
      const orderId = randomUUID();
      await tx.caOrder.create({
        data: {
          id: orderId,
          domainId: ctx.domainId,
          periodType: input.period_type,
          periodNum: input.period_num,
          isAutoRenew: input.is_auto_renew,
          isAutoPay: input.is_auto_pay ?? 0,
          subscriptionNum: input.subscription_num,
          promotionInfo: input.promotion_info ?? null,
          enterpriseProjectId: input.enterprise_project_id ?? null,
          createdAt: now,
        },
      });
      const caIds = Array.from({ length: input.subscription_num }, () => randomUUID());
      await tx.certificateAuthority.createMany({
        data: caIds.map((id, index) => ({
          id,
          domainId: ctx.domainId,
          status: 'PENDING',
          chargingMode: 0,
          orderId,
          enterpriseProjectId: input.enterprise_project_id ?? '0',
          freeQuota: config.quotas.freeCertificatesPerCa,
          // Distinct creation times keep the order's CAs in a stable list order.
          createdAt: new Date(now.getTime() + index),
        })),
      });
      // Also sets each CA's prepaid_until (the end of the purchased period).
      for (const caId of caIds) {
        await billing.recordPrepaidOrder(tx, {
          caId,
          domainId: ctx.domainId,
          periodType: input.period_type,
          periodNum: input.period_num,
          at: now,
        });
      }
      await recordAudit(tx, ctx, { action: 'pca:ca:create', resourceType: 'ORDER', resourceId: orderId, detail: { ca_ids: caIds } });
      return { order_id: orderId, ca_ids: caIds };
    });
  }

  async function activate(ctx: RequestContext, reference: string, input: ActivateCaInput): Promise<void> {
    const caId = resolve(ctx, reference);
    // The issuer's reference is syntax, judged before the CA's existence (§2); the transaction resolves it again. A
    // ROOT ignores it (§4.2.4), and "" is no reference: Huawei's Go SDK sends its unset issuer_id so.
    if (input.type !== 'ROOT' && input.issuer_id) resolve(ctx, input.issuer_id, 'issuer_id');
    const current = await findOwnCa(db, ctx, caId, clock.now());
    requireStatus(current, effectiveStatus(current, clock.now()), ['PENDING'], 'activate');
    const unconfigured = current.keyRef === null;
    const spec = unconfigured
      ? specOf(input)
      : specOf({ ...input, ...storedSpecInput(current, input) }, { storedNameConstraints: input.name_constraints === undefined });
    if (spec.type === 'SUBORDINATE') {
      if (!spec.issuerRef) throw errors.invalidParameter('issuer_id is required');
      if (!spec.hash) throw errors.invalidParameter('signature_algorithm is required');
      if (!spec.validity) throw errors.invalidParameter('validity is required');
    }
    const commit = (made?: { key: NewKey; store: KeyStore }) =>
      retryingSerialCollision(() =>
        db.$transaction(async (tx) => {
          const now = clock.now();
          const row = await lockOwnCa(tx, ctx, caId, 'update', clock.now());
          requireStatus(row, effectiveStatus(row, now), ['PENDING'], 'activate');
          if ((row.keyRef === null) !== unconfigured) throw errors.conflictingState('the CA changed while activating; retry');
          // The stored key as the locked row holds it: a master-key rotation may have re-wrapped its key_ref since
          // `current` was read, and writing that value back would leave the key sealed under the retired master key.
          const { key, store } = made ?? heldKey(row);
          const columns = {
            ...(await configuredColumns(tx, ctx, spec, key, store, now)),
            ...crlColumns(input.crl_configuration, caId),
            ...(input.enterprise_project_id !== undefined ? { enterpriseProjectId: input.enterprise_project_id } : {}),
          };
          await keepNewKey(tx, key);
          const updated = await tx.certificateAuthority.update({ where: { id: caId }, data: columns });
          if (updated.chargingMode === 1) await billing.startBillableUsage(tx, updated, now);
          await recordAudit(tx, ctx, {
            action: 'pca:ca:activate',
            resourceType: 'CA',
            resourceId: caId,
            detail: { issuer_id: updated.issuerId },
          });
        }),
      );
    if (!unconfigured) return commit();
    return withNewKey(
      ctx,
      caId,
      spec.keyAlgorithm,
      async () => undefined,
      (key, store) => commit({ key, store }),
    );
  }

  /** The key a configured CA row holds, reused as it stands (not a new key, so nothing to keep or destroy). */
  function heldKey(row: CertificateAuthority): { key: NewKey; store: KeyStore } {
    return {
      key: { keyRef: row.keyRef!, spki: new Uint8Array(row.publicKeySpki!), recorded: false },
      store: keyStores.get(row.keyStore as KeyStoreKind),
    };
  }

  async function exportCsr(ctx: RequestContext, reference: string): Promise<{ csr: string }> {
    const row = await findOwnCa(db, ctx, resolve(ctx, reference), clock.now());
    requireStatus(row, effectiveStatus(row, clock.now()), ['PENDING'], 'CSR export');
    if (row.type !== 'SUBORDINATE' || !row.keyRef || !row.publicKeySpki) {
      throw errors.conflictingState('only a configured SUBORDINATE CA holding its key has a CSR');
    }
    const dn = toCaObject(row, config, { now: clock.now(), issuerName: null, autoRenew: null }).distinguished_name!;
    const nameConstraints = row.nameConstraints as NameConstraints | null;
    const der = await buildCsr(
      dn,
      new Uint8Array(row.publicKeySpki),
      caSigner(row, keyStores),
      (row.signatureAlgorithm as HashAlgorithm) ?? 'SHA256',
      nameConstraints,
    );
    return { csr: toPem('CERTIFICATE REQUEST', der) };
  }

  return { create, order, activate, exportCsr };
}
