/**
 * CRL publication (issue #18): each newly signed CRL goes to object storage with the CA certificate, as AWS Private
 * CA and Huawei's OBS publication do, so a CRL of any size reaches relying parties (Lambda answers at most 6 MB).
 *
 * Publication runs after the signing has committed and never inside it: a failed upload cannot undo or hold up a
 * revocation, which the database, OCSP and the API's CRL route already serve. The CA row records the newest CRL
 * number published and where; a publication that fails is counted (pca_crl_publications_total{outcome="failed"}),
 * logged, and retried by the `crl-refresh` job, which publishes every CA whose newest CRL is not yet out.
 */
import type { Clock } from '../../clock.ts';
import type { CrlPublicationConfig } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { advisoryLock } from '../../db/locks.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { crlCacheControl } from '../revocation/revocation-rules.ts';
import { markCrlPublishedSql, UNPUBLISHED_CRLS_SQL } from './publication-sql.ts';
import type { ObjectPublisher } from './object-publishers.ts';
import { publicationBucket, publishedObjects } from './publication-rules.ts';

export interface ErrorLog {
  error(details: object, message: string): void;
}

export interface CrlPublicationDeps {
  db: Db;
  clock: Clock;
  publication: CrlPublicationConfig;
  publisher: ObjectPublisher;
  metrics: Pick<Metrics, 'crlPublications'>;
  log: ErrorLog;
}

/** Long enough to upload a CRL of a million entries (tens of MB). */
const PUBLICATION_TRANSACTION = { maxWait: 60_000, timeout: 300_000 };
/** CA certificates do not change; a day keeps caches fresh enough for a CA that is re-published elsewhere. */
const CA_CERTIFICATE_CACHE_CONTROL = 'public, max-age=86400';

export function createCrlPublication({ db, clock, publication, publisher, metrics, log }: CrlPublicationDeps) {
  /** Publishes the CA's newest CRL (and its certificate) unless it is already out; true when it put them. */
  async function publish(caId: string): Promise<boolean> {
    const published = await db.$transaction(async (tx) => {
      // One publisher per CA at a time, each putting the newest CRL it finds under the lock: a slower publisher
      // never puts an older CRL over a newer one.
      await advisoryLock(tx, 'crlPublication', caId);
      const ca = await tx.certificateAuthority.findUnique({
        where: { id: caId },
        select: { obsBucketName: true, certificateDer: true, crlPublishedNumber: true, crlPublishedBucket: true },
      });
      const crl = await tx.crl.findFirst({
        where: { caId },
        orderBy: { crlNumber: 'desc' },
        select: { crlNumber: true, nextUpdate: true, der: true },
      });
      if (!ca?.certificateDer || !crl) return false;
      const bucket = publicationBucket(publication, ca.obsBucketName);
      if (ca.crlPublishedBucket === bucket && ca.crlPublishedNumber !== null && ca.crlPublishedNumber >= crl.crlNumber) return false;
      await publisher.put({
        bucket,
        key: publishedObjects.caCertificate(caId),
        body: ca.certificateDer,
        contentType: 'application/pkix-cert',
        cacheControl: CA_CERTIFICATE_CACHE_CONTROL,
      });
      await publisher.put({
        bucket,
        key: publishedObjects.crl(caId),
        body: crl.der,
        contentType: 'application/pkix-crl',
        cacheControl: crlCacheControl(crl.nextUpdate, clock.now()),
      });
      await tx.$executeRaw(markCrlPublishedSql(caId, crl.crlNumber, bucket));
      return true;
    }, PUBLICATION_TRANSACTION);
    if (published) metrics.crlPublications.inc({ outcome: 'published' });
    return published;
  }

  /** CAs whose newest CRL is not out yet, or went to another bucket than their configuration names now. */
  async function unpublishedCaIds(): Promise<string[]> {
    const rows =
      await db.$queryRaw<{ id: string; obs_bucket_name: string | null; crl_published_bucket: string | null; current: boolean }[]>(
        UNPUBLISHED_CRLS_SQL,
      );
    return rows
      .filter((row) => !row.current || row.crl_published_bucket !== publicationBucket(publication, row.obs_bucket_name))
      .map((row) => row.id);
  }

  return {
    publish,

    /** After a committed signing: publishes, and on failure counts and logs it for the `crl-refresh` job to retry. */
    async publishAfterSigning(caId: string): Promise<void> {
      try {
        await publish(caId);
      } catch (error) {
        metrics.crlPublications.inc({ outcome: 'failed' });
        log.error({ err: error, caId }, 'CRL publication failed; the crl-refresh job retries it');
      }
    },

    /** The `crl-refresh` job's second half: publishes every CA whose newest CRL is not out; one failure stops no other. */
    async publishPending(
      onFailure: (caId: string, error: unknown) => void,
    ): Promise<{ unpublished: number; published: number; publishFailed: number }> {
      const ids = await unpublishedCaIds();
      let published = 0;
      let publishFailed = 0;
      for (const id of ids) {
        try {
          if (await publish(id)) published++;
        } catch (error) {
          publishFailed++;
          metrics.crlPublications.inc({ outcome: 'failed' });
          onFailure(id, error);
        }
      }
      return { unpublished: ids.length, published, publishFailed };
    },

    close: () => publisher.close(),
  };
}
export type CrlPublication = ReturnType<typeof createCrlPublication>;
