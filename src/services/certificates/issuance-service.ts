/**
 * Certificate issuance (§4.4.1 server-made keys, §4.4.2 CSRs, §4.4.3 CSR parsing, §10.8 idempotency, §10.9
 * intermediates). One issuance is one transaction: the issuer row locked FOR SHARE (a concurrent disable waits),
 * the idempotency claim, the certificate (or CSR-issued CA) row, its audit event and its billing record.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import { insertRows } from '../../db/bulk-insert.ts';
import type { Db } from '../../db/database.ts';
import { AppError, errors } from '../../errors.ts';
import type { KeyStores } from '../../keystore/index.ts';
import { createSealer } from '../../keystore/sealing.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { keyFamily, type HashAlgorithm } from '../../x509/algorithms.ts';
import { buildCertificate, randomSerial, serialToHex, type CertificateProfile } from '../../x509/certificate.ts';
import { parseCsr } from '../../x509/csr.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import { keySizeOf, spkiToPem } from '../../x509/public-key.ts';
import { recordAudit, recordAudits, type AuditedChange } from '../audit/audit-log.ts';
import type { BillingHooks, CertificateIssue } from '../billing/usage-hooks.ts';
import { issuerRules, validityWindow } from '../ca/issuer.ts';
import type { RequestContext, Tx } from '../context.ts';
import { dnColumns } from '../dn-columns.ts';
import { jsonOrNull } from '../json-column.ts';
import { assertIssuanceAllowed } from '../policy/index.ts';
import { MAX_CERTIFICATE_YEARS, basicConstraintsFor } from './certificate-rules.ts';
import { certificateQuotaUsedUp, releaseCertificateQuota, takeCertificateQuota } from './certificate-usage.ts';
import { createGroupCommitter, type Pending } from './group-commit.ts';
import {
  checkIdempotencyKey,
  claimIdempotencyKey,
  isDeadlock,
  isUniqueViolation,
  lookUpIdempotencyKey,
  requestHash,
  type IdempotencyScope,
  type Remembered,
} from './idempotency.ts';
import { issuanceFacts } from './issuance-facts.ts';
import {
  createIssuancePlanner,
  type CreateCertificateByCsrRequest,
  type CreateCertificateRequest,
  type IssuanceOptions,
  type IssuancePlan,
} from './issuance-plans.ts';
import { createIssuingCaLoader, type IssuingCa } from './issuing-ca.ts';

export type { CreateCertificateByCsrRequest, CreateCertificateRequest, IssuanceOptions } from './issuance-plans.ts';

export interface ParsedCsrObject {
  key_algorithm: string;
  key_algorithm_length: number;
  signature_algorithm: string;
  public_key: string;
  distinguished_name: Required<DistinguishedName>;
}

export interface IssuanceServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'masterKey' | 'quotas'>;
  keyStores: KeyStores;
  billing: Pick<BillingHooks, 'recordCertificateIssue' | 'recordCertificateIssues'>;
  metrics: Pick<Metrics, 'certificatesIssued'>;
}

export const ENDPOINT = { create: 'POST /v1/private-certificates', createByCsr: 'POST /v1/private-certificates/csr' } as const;

/**
 * Batches form only under load, so a large cap costs an idle server nothing. A domain's batches queue on its quota
 * counter row anyway: a second batch in flight takes its place in that queue (and keeps other domains moving
 * while one batch waits on a lock); more only hold connections (bench/issue/RESULTS.md has the measurements).
 */
const GROUP_COMMIT = { maxBatch: 256, maxInFlight: 2 };
/** Serial collisions are astronomically rare; a few fresh draws settle any. */
const MAX_ATTEMPTS = 3;

/** How often each key occurs, in key order (so locks taken in this order cannot deadlock). */
function countBy(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of [...keys].sort()) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

interface BatchedIssuance {
  ctx: RequestContext;
  issuerId: string;
  plan: IssuancePlan;
}

export function createIssuanceService(deps: IssuanceServiceDeps) {
  const { db, clock, config } = deps;
  const sealer = createSealer(config.masterKey);

  const issuingCas = createIssuingCaLoader({ config, keyStores: deps.keyStores });
  const planner = createIssuancePlanner({ db, clock, config, issuingCas });

  async function takeQuota(tx: Tx, domainId: string, count: number): Promise<void> {
    if (!(await takeCertificateQuota(tx, domainId, count, config.quotas.certificate))) {
      throw certificateQuotaUsedUp(config.quotas.certificate);
    }
  }

  function profileOf(plan: IssuancePlan, issuer: IssuingCa, serial: Uint8Array, window: { notBefore: Date; notAfter: Date }) {
    const profile: CertificateProfile = {
      serialNumber: serial,
      subject: plan.subject,
      issuer: issuer.subjectDer,
      notBefore: window.notBefore,
      notAfter: window.notAfter,
      spki: plan.spki,
      hash: plan.hash ?? (issuer.row.signatureAlgorithm as HashAlgorithm),
      basicConstraints: basicConstraintsFor(plan.type, plan.requestedPathLength, issuer.pathLength),
      keyUsages: plan.keyUsages,
      extendedKeyUsages: plan.extendedKeyUsages,
      subjectAltNames: plan.subjectAltNames,
      authorityKeyIdentifier: issuer.subjectKeyIdentifier,
      crlDistributionPoint: issuer.urls.crlDistributionPoint,
      ocspUrl: issuer.urls.ocsp,
      caIssuersUrl: issuer.urls.caIssuers,
      customExtensions: plan.customExtensions,
      nameConstraints: plan.nameConstraints,
    };
    return profile;
  }

  /** Signs the certificate (a fresh id and serial) under the locked issuer: its row fields, audit event and billing line. */
  async function signed(ctx: RequestContext, plan: IssuancePlan, issuer: IssuingCa, now: Date, id = randomUUID()) {
    const serial = randomSerial();
    const window = validityWindow(plan.validity, now, MAX_CERTIFICATE_YEARS, issuer.notAfter);
    assertIssuanceAllowed(issuerRules(issuer, plan.extraPolicies), issuanceFacts(plan, window));
    const profile = profileOf(plan, issuer, serial, window);
    const der = await buildCertificate(profile, issuer.signer);
    const row = {
      id,
      domainId: ctx.domainId,
      issuerId: issuer.row.id,
      keyAlgorithm: plan.keyAlgorithm,
      signatureAlgorithm: profile.hash,
      ...dnColumns(plan.subjectFields),
      serialNumber: serialToHex(serial),
      notBefore: window.notBefore,
      notAfter: window.notAfter,
      certificateDer: new Uint8Array(der),
      enterpriseProjectId: plan.enterpriseProjectId,
      createdAt: now,
    };
    const change: AuditedChange = {
      action: 'pca:ca:issueCert',
      resourceType: plan.storeAsCa ? 'CA' : 'CERTIFICATE',
      resourceId: id,
      detail: { issuer_id: issuer.row.id, serial_number: row.serialNumber, gen_mode: plan.genMode, type: plan.type },
    };
    const issue: CertificateIssue = { domainId: ctx.domainId, resourceId: id, issuerCaId: issuer.row.id, at: now };
    const certificate = {
      ...row,
      type: plan.type,
      status: 'ISSUED',
      genMode: plan.genMode,
      pathLength: profile.basicConstraints.pathLength ?? null,
      sealedPrivateKey: plan.pkcs8 ? sealer.seal(plan.pkcs8, id) : null,
    };
    return { id, row, profile, certificate, change, issue, caKeyAlgorithm: issuer.row.keyAlgorithm ?? 'unknown' };
  }

  type Made = Awaited<ReturnType<typeof signed>>;

  /** One attempt: everything in one transaction, with a fresh id and serial. */
  async function issueOnce(
    ctx: RequestContext,
    issuerReference: string,
    plan: IssuancePlan,
    idempotency: { scope: IdempotencyScope; hash: string; previous: Remembered } | undefined,
  ): Promise<string> {
    const id = randomUUID();
    const now = clock.now();
    const made = await db.$transaction(async (tx) => {
      if (idempotency) await claimIdempotencyKey(tx, idempotency.scope, idempotency.hash, id, now, idempotency.previous);
      if (!plan.storeAsCa) await takeQuota(tx, ctx.domainId, 1);
      const issuer = await issuingCas.lockIssuingCa(tx, ctx, issuerReference, now);
      const made = await signed(ctx, plan, issuer, now, id);
      if (plan.storeAsCa) {
        await tx.certificateAuthority.create({
          data: {
            ...made.row,
            type: 'SUBORDINATE',
            status: 'ACTIVED',
            genMode: 'CSR',
            pathLength: made.profile.basicConstraints.pathLength ?? 0,
            keyUsages: plan.keyUsages,
            publicKeySpki: new Uint8Array(plan.spki),
            nameConstraints: jsonOrNull(plan.nameConstraints),
            updatedAt: now,
          },
        });
      } else {
        await tx.certificate.create({ data: made.certificate });
      }
      await recordAudit(tx, ctx, made.change);
      await deps.billing.recordCertificateIssue(tx, made.issue);
      return made;
    });
    deps.metrics.certificatesIssued.inc({ ca_key_algorithm: made.caKeyAlgorithm });
    return made.id;
  }

  /**
   * Issues a group-committed batch in one transaction: the quota counter taken once per domain, each distinct
   * issuer locked FOR SHARE once, multi-row inserts. A request refused on its own (issuer, validity) is answered
   * with its error without failing the others; if the transaction fails (quota short, serial collision,
   * deadlock), each request is issued alone and gets its own answer.
   */
  async function writeBatch(batch: Pending<BatchedIssuance, string>[]): Promise<void> {
    const now = clock.now();
    let outcome: { accepted: { pending: Pending<BatchedIssuance, string>; id: string; caKeyAlgorithm: string }[]; refused: { pending: Pending<BatchedIssuance, string>; error: unknown }[] };
    try {
      outcome = await db.$transaction(async (tx) => {
        // The quota first (as alone): a domain's issuances then reach its issuers' rows one at a time, so the
        // free_quota update never waits on another issuance's share lock. Refused requests give theirs back.
        const perDomain = countBy(batch.map((pending) => pending.item.ctx.domainId));
        for (const [domainId, count] of perDomain) await takeQuota(tx, domainId, count);
        const rows = await issuingCas.lockIssuingCaRows(tx, batch.map((pending) => pending.item.issuerId), now);
        // Signed all at once: each signature is a round trip to the key store (the libuv pool, the token), so
        // signing one after another would hold the locks for the sum of those round trips.
        type Signing = { pending: Pending<BatchedIssuance, string> } & ({ certificate: Made } | { error: unknown });
        const signings = await Promise.all(
          batch.map(async (pending): Promise<Signing> => {
            const { ctx, issuerId, plan } = pending.item;
            try {
              const row = rows.get(issuerId);
              if (!row || row.domainId !== ctx.domainId) throw errors.notFound(`CA ${issuerId}`);
              return { pending, certificate: await signed(ctx, plan, await issuingCas.issuingCaOf(tx, row, now), now) };
            } catch (error) {
              if (!(error instanceof AppError)) throw error;
              return { pending, error };
            }
          }),
        );
        const accepted: { pending: Pending<BatchedIssuance, string>; id: string; caKeyAlgorithm: string }[] = [];
        const refused: { pending: Pending<BatchedIssuance, string>; error: unknown }[] = [];
        const made: Made[] = [];
        for (const signing of signings) {
          if ('error' in signing) {
            refused.push(signing);
          } else {
            made.push(signing.certificate);
            accepted.push({ pending: signing.pending, id: signing.certificate.id, caKeyAlgorithm: signing.certificate.caKeyAlgorithm });
          }
        }
        for (const [domainId, count] of countBy(refused.map(({ pending }) => pending.item.ctx.domainId))) {
          await releaseCertificateQuota(tx, domainId, count);
        }
        if (made.length > 0) {
          await insertRows(tx, 'certificates', made.map((certificate) => certificate.certificate));
          await recordAudits(tx, made.map((certificate, index) => ({ context: accepted[index]!.pending.item.ctx, change: certificate.change })));
          const freeQuotas = new Map([...rows.values()].map((row) => [row.id, row.freeQuota]));
          await deps.billing.recordCertificateIssues(tx, made.map((certificate) => certificate.issue), freeQuotas);
        }
        return { accepted, refused };
      });
    } catch {
      for (const pending of batch) issueWithRetries(pending.item.ctx, pending.item.issuerId, pending.item.plan).then(pending.resolve, pending.reject);
      return;
    }
    for (const { pending, id, caKeyAlgorithm } of outcome.accepted) {
      deps.metrics.certificatesIssued.inc({ ca_key_algorithm: caKeyAlgorithm });
      pending.resolve(id);
    }
    for (const { pending, error } of outcome.refused) pending.reject(error);
  }

  const issueInBatch = createGroupCommitter(writeBatch, GROUP_COMMIT);

  /**
   * One issuance in its own transaction, retried on a unique violation (a concurrent claim of the Idempotency-Key,
   * whose stored answer is then returned, or a serial collision) or a deadlock (the billing hook's free-quota
   * update against another issuance's share lock on the same CA).
   */
  async function issueWithRetries(
    ctx: RequestContext,
    issuerReference: string,
    plan: IssuancePlan,
    idempotency?: { scope: IdempotencyScope; hash: string; previous: Remembered },
  ): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await issueOnce(ctx, issuerReference, plan, idempotency);
      } catch (error) {
        if (!isUniqueViolation(error) && !isDeadlock(error)) throw error;
        if (idempotency) {
          idempotency.previous = await lookUpIdempotencyKey(db, idempotency.scope, idempotency.hash, clock.now());
          if (idempotency.previous.kind === 'replay') return idempotency.previous.certificateId;
        }
        if (attempt >= MAX_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Runs an issuance under the optional Idempotency-Key: a remembered success within 24 h answers its id without
   * issuing. Plain certificates without a key are group-committed; the rest issue alone.
   */
  async function issue(
    ctx: RequestContext,
    endpoint: string,
    idempotencyHeader: unknown,
    body: unknown,
    issuerReference: string,
    makePlan: () => Promise<IssuancePlan>,
  ): Promise<string> {
    const key = checkIdempotencyKey(idempotencyHeader);
    const scope = key === undefined ? undefined : { domainId: ctx.domainId, endpoint, key };
    const hash = scope ? requestHash(body) : '';
    let previous: Remembered = { kind: 'none' };
    if (scope) {
      previous = await lookUpIdempotencyKey(db, scope, hash, clock.now());
      if (previous.kind === 'replay') return previous.certificateId;
    }
    const plan = await makePlan();
    if (scope || plan.storeAsCa) return issueWithRetries(ctx, issuerReference, plan, scope && { scope, hash, previous });
    return issueInBatch({ ctx, issuerId: issuingCas.issuerIdOf(ctx, issuerReference), plan });
  }

  return {
    /** §4.4.1: returns the certificate id. */
    create(ctx: RequestContext, request: CreateCertificateRequest, idempotencyKey?: unknown, options?: IssuanceOptions): Promise<string> {
      return issue(ctx, ENDPOINT.create, idempotencyKey, request, request.issuer_id, () => planner.planServerKey(ctx, request, options));
    },

    /**
     * §4.4.2: returns the certificate id, or the new CA's id for INTERMEDIATE_CA. `options.extraPolicies` (ACME)
     * are evaluated next to the issuing CA's own policy.
     */
    createByCsr(ctx: RequestContext, request: CreateCertificateByCsrRequest, idempotencyKey?: unknown, options?: IssuanceOptions): Promise<string> {
      return issue(ctx, ENDPOINT.createByCsr, idempotencyKey, request, request.issuer_id, () => planner.planCsr(request, options));
    },

    /** §4.4.3: nothing stored or billed. */
    async parseCsr(csrPem: string): Promise<ParsedCsrObject> {
      const csr = await parseCsr(csrPem);
      return {
        key_algorithm: keyFamily(csr.keyAlgorithm),
        key_algorithm_length: keySizeOf(csr.keyAlgorithm),
        signature_algorithm: csr.signatureAlgorithm,
        public_key: spkiToPem(csr.spki),
        distinguished_name: {
          common_name: csr.subject.common_name ?? null,
          country: csr.subject.country ?? null,
          state: csr.subject.state ?? null,
          locality: csr.subject.locality ?? null,
          organization: csr.subject.organization ?? null,
          organizational_unit: csr.subject.organizational_unit ?? null,
        },
      };
    },
  };
}
export type IssuanceService = ReturnType<typeof createIssuanceService>;
