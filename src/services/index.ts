/**
 * Composition root of the domain layer: every service gets exactly the dependencies it uses.
 * Routes reach services through `app.services`; jobs through the same object.
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { DatabaseHandle } from '../db/database.ts';
import type { KeyStores } from '../keystore/index.ts';

export type { KeyStores };
import type { Job } from '../jobs/job-runner.ts';
import { createReadinessService } from './readiness-service.ts';
import { createCrlRefreshJob, createRevocationServices } from './revocation/index.ts';
import { createBillingHooks } from './billing/usage-hooks.ts';
import { billingSettlementJob, createBillingService } from './billing/billing-service.ts';
import { createAccessKeyService } from './access-keys/access-key-service.ts';
import { createAuditService } from './audit/audit-service.ts';
import { createCertificateService } from './certificates/certificate-service.ts';
import { createIssuanceService } from './certificates/issuance-service.ts';
import { createCaService } from './ca/ca-service.ts';
import { caDeletionJob, caExpiryJob } from './ca/ca-jobs.ts';
import { createTagService } from './tags/tag-service.ts';

export interface ServiceDependencies {
  config: Config;
  database: DatabaseHandle;
  keyStores: KeyStores;
  clock: Clock;
}

export function createServices(deps: ServiceDependencies) {
  const { database, keyStores } = deps;
  const configuredStores = [keyStores.software, ...(keyStores.pkcs11 ? [keyStores.pkcs11] : [])];
  // Called inside the CA, order and certificate transactions (see billing/usage-hooks.ts).
  const billingHooks = createBillingHooks(deps.config.billing);
  return {
    billing: createBillingService({ db: database.prisma, config: deps.config, hooks: billingHooks }),
    readiness: createReadinessService({ database, keyStores: configuredStores }),
    accessKeys: createAccessKeyService({ db: database.prisma, clock: deps.clock, config: deps.config }),
    audit: createAuditService({ db: database.prisma }),
    issuance: createIssuanceService({ db: database.prisma, clock: deps.clock, config: deps.config, keyStores, billing: billingHooks }),
    ca: createCaService({ db: database.prisma, clock: deps.clock, config: deps.config, keyStores, billing: billingHooks }),
    tags: createTagService({ db: database.prisma, clock: deps.clock, config: deps.config }),
    certificates: createCertificateService({ db: database.prisma, clock: deps.clock, config: deps.config }),
    revocation: createRevocationServices({ db: database.prisma, clock: deps.clock, keyStores, config: deps.config }),
  };
}
export type Services = ReturnType<typeof createServices>;

/** Every scheduled job of the service; serverless.yml declares one scheduled function per name. */
export function createJobs(services: Services, deps: ServiceDependencies): Job[] {
  const db = deps.database.prisma;
  return [
    caDeletionJob({ db, keyStores: deps.keyStores, billing: services.billing.hooks }),
    caExpiryJob({ db }),
    billingSettlementJob(services.billing.settlement),
    createCrlRefreshJob(services.revocation.crls),
  ];
}
