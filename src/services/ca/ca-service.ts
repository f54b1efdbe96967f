/**
 * The CA hierarchy (§4.2, §6.1): create, order, activate, CSR export and import, list, show, export, enable,
 * disable, scheduled deletion, restore and quota. Every state change is one transaction that locks the CA row
 * FOR UPDATE, re-checks the state, writes the change, its audit event and its billing hook.
 */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { BillingHooks } from '../billing/usage-hooks.ts';
import type { RequestContext } from '../context.ts';
import type { CrlService } from '../revocation/crl-service.ts';
import { resolveCaReference } from '../urn.ts';
import { createCaImport } from './ca-import.ts';
import { createCaLifecycle, type CaLifecycleDeps } from './ca-lifecycle.ts';
import { createCaQueries } from './ca-queries.ts';
import { CA_STATUSES } from './ca-rules.ts';
import { createCaTransitions } from './ca-transitions.ts';

export interface CaServiceDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'region' | 'publicBaseUrl' | 'keyStore' | 'quotas'>;
  keyStores: KeyStores;
  /** Called inside our transactions (src/services/billing/usage-hooks.ts). */
  billing: Omit<BillingHooks, 'recordCertificateIssue'>;
  crls: Pick<CrlService, 'signStale'>;
  log: CaLifecycleDeps['log'];
}

export const PENDING_DAYS = { min: 7, max: 30, default: 7 } as const;

/** The façade the routes use: lifecycle, import, transitions and queries, each in its own module. */
export function createCaService(deps: CaServiceDeps) {
  const { db, clock, config, keyStores, billing, crls, log } = deps;
  const resolve = (ctx: RequestContext, reference: string, field = 'ca_id') =>
    resolveCaReference(reference, { region: config.region, domainId: ctx.domainId, field });
  const lifecycle = createCaLifecycle({ db, clock, config, keyStores, billing, resolve, log });
  const transitions = createCaTransitions({ db, clock, keyStores, billing, crls, resolve });
  return {
    create: lifecycle.create,
    order: lifecycle.order,
    activate: lifecycle.activate,
    exportCsr: lifecycle.exportCsr,
    ...createCaImport({ db, clock, billing, resolve }),
    ...createCaQueries({ db, clock, config, resolve }),
    enable: transitions.enable,
    disable: transitions.disable,
    delete: transitions.remove,
    restore: transitions.restore,
    statuses: CA_STATUSES,
  };
}

export type CaService = ReturnType<typeof createCaService>;
