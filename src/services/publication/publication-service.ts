/**
 * CRL publication (issue #18): each newly signed CRL goes to object storage with the CA certificate, as AWS Private
 * CA and Huawei's OBS publication do, so a CRL of any size reaches relying parties (Lambda answers at most 6 MB).
 * A certificate names the bucket its CA mapped to when it was issued, and that mapping changes (another
 * `obs_bucket_name`, CRL_PUBLISH_BUCKETS edited): every bucket a CA has mapped to keeps receiving its newest CRL.
 *
 * Publication runs after the signing has committed and never inside it: a failed upload cannot undo or hold up a
 * revocation, which the database, OCSP and the API's CRL route already serve. The CA row lists its buckets
 * (crl_publication_buckets), crl_publications the newest CRL each holds, and a publication puts the CRL only into the
 * buckets that lack it: a bucket that fails for good costs a retry of its own, not a re-upload to every other. A publication that fails is counted
 * (pca_crl_publications_total{outcome="failed"}), logged, and retried by the `crl-refresh` job, which publishes every
 * CA with a bucket behind.
 */
import type { Clock } from '../../clock.ts';
import type { CrlPublicationConfig } from '../../config.ts';
import type { Db } from '../../db/database.ts';
import { advisoryLock } from '../../db/locks.ts';
import type { Metrics } from '../../metrics/metrics.ts';
import { crlCacheControl } from '../revocation/revocation-rules.ts';
import type { ObjectPublisher } from './object-publishers.ts';
import { bucketsBehind, publicationBucket, publishedObjects } from './publication-rules.ts';
import { recordBucketSql, recordCrlPublicationSql, UNPUBLISHED_CRLS_SQL } from './publication-sql.ts';

export interface ErrorLog {
  error(details: object, message: string): void;
}

export interface PublicationLog extends ErrorLog {
  warn(details: object, message: string): void;
}

export interface CrlPublicationDeps {
  db: Db;
  clock: Clock;
  publication: CrlPublicationConfig;
  publisher: ObjectPublisher;
  metrics: Pick<Metrics, 'crlPublications'>;
  log: PublicationLog;
}

/** Long enough to upload a CRL of a million entries (tens of MB). */
const PUBLICATION_TRANSACTION = { maxWait: 60_000, timeout: 300_000 };
/** CA certificates do not change; a day keeps caches fresh enough for a CA that is re-published elsewhere. */
const CA_CERTIFICATE_CACHE_CONTROL = 'public, max-age=86400';

export function createCrlPublication({ db, clock, publication, publisher, metrics, log }: CrlPublicationDeps) {
  /**
   * Puts the CA's newest CRL (and its certificate) into every bucket its certificates may name that does not hold it
   * yet: the bucket it maps to now and each it published to before. True when it put them; throws, once the others
   * are written and recorded, when a bucket refused them.
   */
  async function publish(caId: string): Promise<boolean> {
    const outcome = await db.$transaction(async (tx) => {
      // One publisher per CA at a time, each putting the newest CRL it finds under the lock: a slower publisher
      // never puts an older CRL over a newer one.
      await advisoryLock(tx, 'crlPublication', caId);
      const ca = await tx.certificateAuthority.findUnique({
        where: { id: caId },
        select: { obsBucketName: true, certificateDer: true, crlPublicationBuckets: true },
      });
      const newest = await tx.crl.findFirst({
        where: { caId },
        orderBy: { crlNumber: 'desc' },
        select: { crlNumber: true, nextUpdate: true },
      });
      if (!ca?.certificateDer || !newest) return undefined;
      const holding = await tx.crlPublication.findMany({
        where: { caId, crlNumber: { gte: newest.crlNumber } },
        select: { bucket: true },
      });
      const { writable, unwritable } = bucketsBehind(
        publication,
        ca.obsBucketName,
        ca.crlPublicationBuckets,
        holding.map(({ bucket }) => bucket),
      );
      if (writable.length === 0) return undefined;

      // The service has credentials for the configured buckets only; certificates naming another one go stale.
      if (unwritable.length > 0) {
        log.warn({ caId, buckets: unwritable }, 'CRL not published to buckets certificates name but CRL_PUBLISH_BUCKETS no longer lists');
      }
      // Read only now: a large CA's CRL is tens of MB.
      const { der } = await tx.crl.findUniqueOrThrow({
        where: { caId_crlNumber: { caId, crlNumber: newest.crlNumber } },
        select: { der: true },
      });
      const failures: unknown[] = [];
      for (const bucket of writable) {
        try {
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
            body: der,
            contentType: 'application/pkix-crl',
            cacheControl: crlCacheControl(newest.nextUpdate, clock.now()),
          });
        } catch (error) {
          failures.push(error);
          continue;
        }
        await tx.$executeRaw(recordBucketSql(caId, bucket, newest.crlNumber));
      }
      // The current bucket is added to the CA's buckets even when it refused: certificates name it, and it is retried
      // with the others. The single number is what the previous release reads (prisma/schema.prisma): with no
      // failure, every writable bucket holds the CRL now (those skipped held it already).
      const current = publicationBucket(publication, ca.obsBucketName);
      await tx.$executeRaw(recordCrlPublicationSql(caId, current, failures.length === 0 ? newest.crlNumber : null));
      return { failures };
    }, PUBLICATION_TRANSACTION);
    if (!outcome) return false;
    if (outcome.failures.length > 0) throw new AggregateError(outcome.failures, `CRL publication of CA ${caId} failed`);
    metrics.crlPublications.inc({ outcome: 'published' });
    return true;
  }

  /** CAs with a writable bucket, listed or mapped to now, that does not hold their newest CRL. */
  async function unpublishedCaIds(): Promise<string[]> {
    const rows =
      await db.$queryRaw<{ id: string; obs_bucket_name: string | null; buckets: string[]; holding_newest: string[] }[]>(
        UNPUBLISHED_CRLS_SQL,
      );
    return rows
      .filter((row) => bucketsBehind(publication, row.obs_bucket_name, row.buckets, row.holding_newest).writable.length > 0)
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
