/** Revocation, CRLs and OCSP: the services the revocation and public PKI routes use, and the CRL job. */
import type { Clock } from '../../clock.ts';
import type { Config } from '../../config.ts';
import type { DatabaseHandle, Db } from '../../db/database.ts';
import type { Job } from '../../jobs/job-runner.ts';
import type { KeyStores } from '../../keystore/index.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { createObjectPublisher } from '../publication/object-publishers.ts';
import { createCrlPublication, type CrlPublication, type PublicationLog } from '../publication/publication-service.ts';
import { createCrlService, type CrlService } from './crl-service.ts';
import { createOcspResponder } from './ocsp-responder.ts';
import { createRevocationService } from './revocation-service.ts';

export interface RevocationDeps {
  db: Db;
  /** The OCSP responder's hot path runs one prepared statement outside Prisma. */
  database: Pick<DatabaseHandle, 'query'>;
  clock: Clock;
  keyStores: KeyStores;
  config: Pick<Config, 'region' | 'crlPublication' | 'databaseQueryWaitMs'>;
  metrics: Pick<Metrics, 'certificatesRevoked' | 'crlGeneration' | 'crlSize' | 'crlPublications' | 'ocspResponses'>;
  log: PublicationLog;
}

export function createRevocationServices(deps: RevocationDeps) {
  const signing = createCrlService(deps);
  const { crlPublication } = deps.config;
  const publication =
    crlPublication && createCrlPublication({ ...deps, publication: crlPublication, publisher: createObjectPublisher(crlPublication) });
  // The CRL a revocation or a CA change waits for is published once its signing has committed (see publication-service.ts).
  const crls: CrlService = publication
    ? { ...signing, signStale: (caId) => signing.signStale(caId).then(() => publication.publishAfterSigning(caId)) }
    : signing;
  return {
    revocations: createRevocationService({ ...deps, crls }),
    crls,
    publication,
    ocsp: createOcspResponder(deps),
  };
}
export type RevocationServices = ReturnType<typeof createRevocationServices>;

/**
 * Signs the CRLs that are due (a revocation whose own signing failed, or half the validity passed), then publishes
 * what is not out yet (those, and publications that failed); every minute (serverless.yml schedules the same).
 */
export function createCrlRefreshJob(crls: CrlService, publication: CrlPublication | undefined): Job {
  return {
    name: 'crl-refresh',
    intervalSeconds: 60,
    async run({ log }) {
      const signed = await crls.refreshDue((caId, error) => log.error({ err: error, caId }, 'CRL signing failed'));
      if (!publication) return signed;
      return {
        ...signed,
        ...(await publication.publishPending((caId, error) => log.error({ err: error, caId }, 'CRL publication failed'))),
      };
    },
  };
}
