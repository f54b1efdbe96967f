/**
 * Composition root of the domain layer: every service gets exactly the dependencies it uses.
 * Routes reach services through `app.services`; jobs through the same object.
 */
import { embeddedMaintenanceJob } from '../jobs/embedded-maintenance.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { Job } from '../jobs/job-runner.ts';
import type { KeyStores } from '../keystore/index.ts';
import { createSealer } from '../keystore/sealing.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { createAcmeAdminService } from './acme/acme-admin-service.ts';
import { acmeExpiryJob } from './acme/acme-jobs.ts';
import { createAcmeService } from './acme/acme-service.ts';
import { createChallengeValidator } from './acme/challenge-validation.ts';
import { createAccessKeyService } from './access-keys/access-key-service.ts';
import { signatureExpiryJob } from './access-keys/signature-replay.ts';
import { idempotencyExpiryJob } from './certificates/idempotency.ts';
import { auditRetentionJob } from './audit/audit-retention.ts';
import { createAuditService } from './audit/audit-service.ts';
import { billingSettlementJob, createBillingService } from './billing/billing-service.ts';
import { caPrepaidRenewalJob } from './billing/prepaid-renewal.ts';
import { createBillingHooks } from './billing/usage-hooks.ts';
import { caDeletionJob, caExpiryJob } from './ca/ca-jobs.ts';
import { createCaService } from './ca/ca-service.ts';
import { createIssuancePolicyService } from './ca/issuance-policy-service.ts';
import { createCertificateService } from './certificates/certificate-service.ts';
import { createIssuanceService } from './certificates/issuance-service.ts';
import { createReadinessService } from './readiness-service.ts';
import { createSignatureVerifier } from './signature-verifier.ts';
import { createCrlRefreshJob, createRevocationServices } from './revocation/index.ts';
import type { ErrorLog } from './publication/publication-service.ts';
import { createTagService } from './tags/tag-service.ts';

export type { KeyStores };

export interface ServiceDependencies {
  config: Config;
  database: DatabaseHandle;
  keyStores: KeyStores;
  clock: Clock;
  metrics: Metrics;
  /**
   * Failures a service survives but an operator must see (a CRL publication that the crl-refresh job will retry, a
   * key the ca-deletion job will destroy).
   */
  log: ErrorLog & { warn(details: object, message: string): void };
}

export function createServices(deps: ServiceDependencies) {
  const { database, keyStores, clock, config, metrics, log } = deps;
  const db = database.prisma;
  // One sealer for every service that seals or opens secrets under the master key (the key stores have their own).
  const sealer = createSealer(config.masterKey, config.otherMasterKeys);
  const configuredStores = [keyStores.software, ...(keyStores.pkcs11 ? [keyStores.pkcs11] : [])];
  // Called inside the CA, order and certificate transactions (see billing/usage-hooks.ts).
  const billingHooks = createBillingHooks(config.billing);
  const signatureVerifier = createSignatureVerifier({
    onWorkerFailure(error) {
      metrics.signatureWorkerFailures.inc();
      log.error({ err: error }, 'the CSR signature worker failed; its checks were made on the main thread');
    },
  });
  const issuance = createIssuanceService({
    db,
    sql: database,
    clock,
    config,
    keyStores,
    billing: billingHooks,
    metrics,
    sealer,
    checkSignature: signatureVerifier.verify,
  });
  const revocation = createRevocationServices({ db, database, clock, keyStores, config, metrics, log });
  return {
    billing: createBillingService({ db, config, hooks: billingHooks }),
    readiness: createReadinessService({ database, keyStores: configuredStores }),
    accessKeys: createAccessKeyService({ db, sql: database.query, clock, config, sealer }),
    audit: createAuditService({ db, sql: database }),
    issuance,
    signatureVerifier,
    ca: createCaService({ db, clock, config, keyStores, billing: billingHooks, crls: revocation.crls, log }),
    issuancePolicies: createIssuancePolicyService({ db, clock, config }),
    acmeAdmin: createAcmeAdminService({ db, clock, config, sealer }),
    tags: createTagService({ db, clock, config }),
    certificates: createCertificateService({ db, clock, config, sealer }),
    revocation,
    acme: createAcmeService({
      db,
      clock,
      config,
      sealer,
      issuance,
      revocations: revocation.revocations,
      validator: createChallengeValidator(config.acme),
    }),
  };
}
export type Services = ReturnType<typeof createServices>;

/** Every scheduled job of the service; serverless.yml declares one scheduled function per name. */
export function createJobs(services: Services, deps: ServiceDependencies): Job[] {
  const db = deps.database.prisma;
  return [
    caDeletionJob({ db, keyStores: deps.keyStores, billing: services.billing.hooks }),
    caExpiryJob({ db }),
    caPrepaidRenewalJob({ db, billing: services.billing.hooks }),
    billingSettlementJob(services.billing.settlement, deps.metrics),
    createCrlRefreshJob(services.revocation.crls, services.revocation.publication),
    acmeExpiryJob({ db }),
    signatureExpiryJob({ db }),
    idempotencyExpiryJob({ db }),
    auditRetentionJob({ db, retentionDays: deps.config.auditRetentionDays }),
    ...(deps.database.kind === 'pglite' ? [embeddedMaintenanceJob(db)] : []),
  ];
}
