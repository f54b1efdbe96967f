/**
 * Certificate issuance (§4.4.1 server-made keys, §4.4.2 CSRs, §4.4.3 CSR parsing, §10.8 idempotency, §10.9
 * intermediates). One issuance is one transaction: the issuer row locked FOR SHARE (a concurrent disable waits),
 * the idempotency claim, the certificate (or CSR-issued CA) row, its audit event and its billing record. Plain
 * certificates are group-committed on raw SQL (`writeBatch`: one statement once this process has read the issuer,
 * else one transaction); a CSR-issued CA, and a request whose batch failed, issue alone through Prisma
 * (`issueOnce`), running the same named statements where the two paths share a step.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import { createGroupCommitter } from '../../db/group-commit.ts';
import type { DatabaseHandle, Db } from '../../db/database.ts';
import { type Executor, retryingConflicts } from '../../db/tx.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Sealer } from '../../keystore/sealing.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { keyFamily, type HashAlgorithm } from '../../x509/algorithms.ts';
import { buildCertificate, randomSerial, serialToHex, type CertificateProfile } from '../../x509/certificate.ts';
import { parseCsr } from '../../x509/csr.ts';
import type { DistinguishedName } from '../../x509/name.ts';
import { keySizeOf, type SignatureCheckRunner, spkiToPem } from '../../x509/public-key.ts';
import { recordAudit, type AuditedChange } from '../audit/audit-log.ts';
import type { BillingHooks, CertificateIssue } from '../billing/usage-hooks.ts';
import { issuerRules, validityWindow } from '../ca/issuer.ts';
import type { RequestContext } from '../context.ts';
import { dnColumns } from '../dn-columns.ts';
import { jsonOrNull } from '../json-column.ts';
import { assertIssuanceAllowed } from '../policy/index.ts';
import { MAX_CERTIFICATE_YEARS, basicConstraintsFor } from './certificate-rules.ts';
import { certificateQuotaUsedUp, takeCertificateQuota } from './certificate-usage.ts';
import { answerOfHeldKey, checkIdempotencyKey, claimIdempotencyKeys, lookUpIdempotencyKey, requestHash, scopeName } from './idempotency.ts';
import { issuanceFacts } from './issuance-facts.ts';
import type { CreateCertificateByCsrRequest, CreateCertificateRequest } from './certificate-input.ts';
import { createIssuancePlanner, type IssuanceOptions, type IssuancePlan } from './issuance-plans.ts';
import { createIssuingCaLoader, type IssuingCa } from './issuing-ca.ts';
import { createBatchWriter, type AloneAnswer, type Idempotency } from './issuance-batch.ts';
import { heldCaKeyRefused, heldCaKeys } from './held-ca-keys.ts';
import { LOOK_UP_IDEMPOTENCY_KEY } from './issuance-sql.ts';

export type { IssuanceOptions } from './issuance-plans.ts';

export interface ParsedCsrObject {
  key_algorithm: string;
  key_algorithm_length: number;
  signature_algorithm: string;
  public_key: string;
  distinguished_name: Required<DistinguishedName>;
}

export interface IssuanceServiceDeps {
  db: Db;
  /** The prepared-statement path: the idempotency lookup and the group-committed batch's transaction. */
  sql: Pick<DatabaseHandle, 'query' | 'transaction'>;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'quotas'>;
  keyStores: KeyStores;
  billing: Pick<BillingHooks, 'recordCertificateIssue' | 'chargeCertificateIssues' | 'paidIssueRecords'>;
  metrics: Pick<Metrics, 'certificatesIssued' | 'issuanceBatchRedos'>;
  /** The master-key sealer, built once at composition. */
  sealer: Sealer;
  /** Runs the CSRs' signature checks (services/signature-verifier.ts). */
  checkSignature: SignatureCheckRunner;
}

/**
 * Idempotency scopes. ACME finalize has one of its own: its keys (an order's id) must not be claimable by a REST
 * caller's Idempotency-Key, which could otherwise hold an order's finalize for 24 hours.
 */
export const ENDPOINT = {
  create: 'POST /v1/private-certificates',
  createByCsr: 'POST /v1/private-certificates/csr',
  acmeFinalize: 'ACME finalize',
} as const;

/**
 * Batches form only under load, so a large cap costs an idle server nothing. A domain's batches meet on its quota
 * counter row, which a one-statement batch holds only while that statement runs (not while it signs): four batches
 * in flight issued ~10 % more than two at 16 in flight, the same at 128 (bench/issue/RESULTS.md).
 */
const GROUP_COMMIT = { maxBatch: 256, maxInFlight: 4, send: 'next-turn' } as const;
/** Serial collisions are astronomically rare; a few fresh draws settle any. */
const MAX_ATTEMPTS = 3;

export function createIssuanceService(deps: IssuanceServiceDeps) {
  const { db, clock, config } = deps;
  const { sealer } = deps;

  const issuingCas = createIssuingCaLoader({ config, keyStores: deps.keyStores });
  const planner = createIssuancePlanner({ sql: deps.sql.query, clock, config, issuingCas, checkSignature: deps.checkSignature });

  async function takeQuota(tx: Executor, domainId: string, count: number): Promise<void> {
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

  /** Signs the certificate `id` (with a fresh serial) under the locked issuer: its row fields, audit event and billing line. */
  async function signed(ctx: RequestContext, plan: IssuancePlan, issuer: IssuingCa, now: Date, id: string) {
    const serial = randomSerial();
    const window = validityWindow(plan.validity, now, MAX_CERTIFICATE_YEARS, issuer.notAfter, issuer.row.notBefore);
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

  /**
   * One attempt: everything in one transaction, with a fresh id and serial. A CSR whose key is a held CA key is
   * refused first (held-ca-keys.ts). A key another transaction holds answers with that success's id (or 409),
   * `issued` false.
   */
  async function issueOnce(
    ctx: RequestContext,
    issuerReference: string,
    plan: IssuancePlan,
    idempotency: Idempotency | undefined,
  ): Promise<AloneAnswer> {
    const id = randomUUID();
    const now = clock.now();
    const outcome = await db.$transaction(async (tx): Promise<{ held: string } | { made: Made }> => {
      if (plan.genMode === 'CSR' && (await heldCaKeys(tx, [plan.spki])).size > 0) throw heldCaKeyRefused();
      if (idempotency && !(await claimIdempotencyKeys(tx, [{ ...idempotency, certificateId: id }], now)).has(id)) {
        return { held: await answerOfHeldKey(tx, idempotency.scope, idempotency.hash, now) };
      }
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
      return { made };
    });
    if ('held' in outcome) return { id: outcome.held, issued: false };
    deps.metrics.certificatesIssued.inc({ ca_key_algorithm: outcome.made.caKeyAlgorithm });
    return { id: outcome.made.id, issued: true };
  }

  const writeBatch = createBatchWriter({
    sql: deps.sql,
    clock,
    billing: deps.billing,
    metrics: deps.metrics,
    issuingCas,
    certificateQuota: config.quotas.certificate,
    signed,
    issueAlone: (item) => issueWithRetries(item.ctx, item.issuerId, item.plan, item.idempotency),
  });
  const issueInBatch = createGroupCommitter(writeBatch, GROUP_COMMIT);

  /**
   * One issuance in its own transaction, retried on a unique violation (a serial collision) or a deadlock (the
   * billing hook's free-quota update against another issuance's share lock on the same CA).
   */
  function issueWithRetries(
    ctx: RequestContext,
    issuerReference: string,
    plan: IssuancePlan,
    idempotency?: Idempotency,
  ): Promise<AloneAnswer> {
    return retryingConflicts(() => issueOnce(ctx, issuerReference, plan, idempotency), {
      attempts: MAX_ATTEMPTS,
      retryUniqueViolations: true,
    });
  }

  /** Plain certificates are group-committed, with or without an Idempotency-Key; CSR-issued CAs issue alone. */
  async function issuePlanned(
    ctx: RequestContext,
    issuerReference: string,
    plan: IssuancePlan,
    idempotency?: Idempotency,
  ): Promise<string> {
    if (plan.storeAsCa) return (await issueWithRetries(ctx, issuerReference, plan, idempotency)).id;
    return issueInBatch({ ctx, issuerId: issuingCas.issuerIdOf(ctx, issuerReference), plan, idempotency });
  }

  /** Each Idempotency-Key this process is answering, settled (never rejected) once it is answered. */
  const keysInFlight = new Map<string, Promise<void>>();

  /**
   * Runs an issuance under the optional Idempotency-Key: a remembered success within 24 h answers its id without
   * issuing. Where `lookUpFirst`, the key is looked up before planning; otherwise the issuing write finds it, since
   * the key is claimed there (a one-statement batch leaves a held key's request to the transaction, which answers
   * the holder's id or 409): one round trip less for every keyed request. Requests with one key run one after another
   * in this process, so a later one replays the first's certificate (or issues, if the first failed) without
   * contending for the key, and a batch never holds a key twice; requests from other processes meet on the key's row
   * (claimIdempotencyKeys).
   */
  async function issue(
    ctx: RequestContext,
    endpoint: string,
    idempotencyHeader: unknown,
    body: unknown,
    issuerReference: string,
    makePlan: () => Promise<IssuancePlan>,
    lookUpFirst: boolean,
  ): Promise<string> {
    const key = checkIdempotencyKey(idempotencyHeader);
    if (key === undefined) return issuePlanned(ctx, issuerReference, await makePlan());
    const idempotency: Idempotency = { scope: { domainId: ctx.domainId, endpoint, key }, hash: requestHash(body) };
    const name = scopeName(idempotency.scope);
    for (let earlier = keysInFlight.get(name); earlier; earlier = keysInFlight.get(name)) await earlier;
    const answer = (async () => {
      const remembered = lookUpFirst
        ? await lookUpIdempotencyKey(deps.sql.query, idempotency.scope, idempotency.hash, clock.now())
        : undefined;
      return remembered ?? issuePlanned(ctx, issuerReference, await makePlan(), idempotency);
    })();
    const forget = () => {
      keysInFlight.delete(name);
    };
    keysInFlight.set(name, answer.then(forget, forget));
    return answer;
  }

  return {
    /**
     * §4.4.1: returns the certificate id. A replay is looked up first: the plan reads the issuer and the quota (a
     * replay must answer even once the quota is used up) and generates a key.
     */
    create(ctx: RequestContext, request: CreateCertificateRequest, idempotencyKey?: unknown): Promise<string> {
      const plan = () => planner.planServerKey(ctx, request);
      return issue(ctx, ENDPOINT.create, idempotencyKey, request, request.issuer_id, plan, true);
    },

    /** §4.4.2: returns the certificate id, or the new CA's id for INTERMEDIATE_CA. */
    createByCsr(ctx: RequestContext, request: CreateCertificateByCsrRequest, idempotencyKey?: unknown): Promise<string> {
      // A CSR's plan reads nothing and depends on the body alone, so a replay plans as its first request did and the
      // issuing write finds the key.
      return issue(ctx, ENDPOINT.createByCsr, idempotencyKey, request, request.issuer_id, () => planner.planCsr(request), false);
    },

    /**
     * An ACME order's certificate, as createByCsr, keyed by the order's id in the ACME finalize scope;
     * `options.extraPolicies` (the CA's ACME policy) are evaluated next to the issuing CA's own policy.
     */
    finalizeAcmeOrder(
      ctx: RequestContext,
      request: CreateCertificateByCsrRequest,
      orderId: string,
      options: IssuanceOptions,
    ): Promise<string> {
      return issue(ctx, ENDPOINT.acmeFinalize, orderId, request, request.issuer_id, () => planner.planCsr(request, options), false);
    },

    /**
     * The certificate issued for ACME order `orderId` of `domainId`, if one was: the one its finalize's Idempotency-Key
     * names (written in the issuing transaction). Only that order's finalize claims the key, so whatever the row's
     * age or request, its certificate is the order's.
     */
    async acmeOrderCertificate(domainId: string, orderId: string): Promise<string | undefined> {
      const [row] = await deps.sql.query<{ certificate_id: string }>(LOOK_UP_IDEMPOTENCY_KEY, [domainId, ENDPOINT.acmeFinalize, orderId]);
      return row?.certificate_id;
    },

    /** §4.4.3: nothing stored or billed. */
    async parseCsr(csrPem: string): Promise<ParsedCsrObject> {
      const csr = await parseCsr(csrPem, deps.checkSignature);
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
