/**
 * Where a CA's CRL and certificate are published (issue #18): the bucket its CRL configuration names
 * (`obs_bucket_name`, as Huawei's OBS publication does) when the deployment allows it, else the deployment's first
 * bucket; under AWS Private CA's object names. Tenants pick among the operator's buckets only, so a CA never makes
 * the service write where its role should not, and the object names hold the CA id, so no CA overwrites another's.
 */
import type { CrlPublicationConfig } from '../../config.ts';
import { publicUrls } from '../ca/ca-rules.ts';

export const publishedObjects = {
  crl: (caId: string) => `crl/${caId}.crl`,
  caCertificate: (caId: string) => `ca/${caId}.crt`,
};

export function publicationBucket(publication: CrlPublicationConfig, obsBucketName: string | null): string {
  return obsBucketName && publication.buckets.includes(obsBucketName) ? obsBucketName : publication.buckets[0]!;
}

/**
 * The buckets a CA's newest CRL has yet to reach: each it has published to and the one it maps to now, but those that
 * hold it. Apart, those CRL_PUBLISH_BUCKETS no longer lists: the service has no credentials for them.
 */
export function bucketsBehind(
  publication: CrlPublicationConfig,
  obsBucketName: string | null,
  recorded: readonly string[],
  holdingNewest: readonly string[],
): { writable: string[]; unwritable: string[] } {
  const behind = [...new Set([...recorded, publicationBucket(publication, obsBucketName)])].filter(
    (bucket) => !holdingNewest.includes(bucket),
  );
  return {
    writable: behind.filter((bucket) => publication.buckets.includes(bucket)),
    unwritable: behind.filter((bucket) => !publication.buckets.includes(bucket)),
  };
}

/** The public URL of a published object: CRL_PUBLIC_BASE_URL with `{bucket}` filled in. */
export function publishedUrl(publication: CrlPublicationConfig, bucket: string, key: string): string {
  return `${publication.publicBaseUrl.replaceAll('{bucket}', bucket)}/${key}`;
}

/**
 * The CRL distribution point new certificates carry: the published object when the deployment publishes (a CRL of
 * any size is served there), else the API's own route.
 */
export function crlDistributionPoint(
  config: { publicBaseUrl: string; crlPublication?: CrlPublicationConfig },
  ca: { id: string; obsBucketName: string | null },
): string {
  const publication = config.crlPublication;
  if (!publication) return publicUrls.crl(config.publicBaseUrl, ca.id);
  return publishedUrl(publication, publicationBucket(publication, ca.obsBucketName), publishedObjects.crl(ca.id));
}
