/** Revocation, CRLs and OCSP: the services the revocation and public PKI routes use, and the CRL job. */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { createCrlService, type CrlService } from './crl-service.ts';
import { createOcspResponder } from './ocsp-responder.ts';
import { createRevocationService } from './revocation-service.ts';

export interface RevocationDeps {
  db: Db;
  clock: Clock;
  keyStores: KeyStores;
  config: Pick<Config, 'region'>;
  metrics: Pick<Metrics, 'certificatesRevoked' | 'crlGeneration' | 'crlSize' | 'ocspResponses'>;
}

export function createRevocationServices(deps: RevocationDeps) {
  const crls = createCrlService(deps);
  return {
    revocations: createRevocationService({ ...deps, crls }),
    crls,
    ocsp: createOcspResponder(deps),
  };
}
export type RevocationServices = ReturnType<typeof createRevocationServices>;

/** Signs the CRLs that are due (a revocation whose own signing failed, or half the validity passed); every minute (serverless.yml schedules the same). */
export function createCrlRefreshJob(crls: CrlService): Job {
  return {
    name: 'crl-refresh',
    intervalSeconds: 60,
    run: ({ log }) => crls.refreshDue((caId, error) => log.error({ err: error, caId }, 'CRL signing failed')),
  };
}
