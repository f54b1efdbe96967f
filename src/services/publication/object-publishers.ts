/**
 * Where published objects go: an S3 bucket (AWS or any S3-compatible endpoint, path- or virtual-host style) or, for
 * the server, a folder per bucket name under CRL_PUBLISH_DIR that a web server serves. Both replace an object
 * whole: a reader sees the previous CRL or the new one, never a part.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CrlPublicationConfig } from '../../config.ts';

export interface PublishedObject {
  bucket: string;
  key: string;
  body: Uint8Array;
  contentType: string;
  cacheControl: string;
}

export interface ObjectPublisher {
  put(object: PublishedObject): Promise<void>;
  close(): void;
}

/** The S3 client is imported at the first publication, so a process that publishes nothing never loads it. */
function s3Publisher(target: Extract<CrlPublicationConfig['target'], { kind: 's3' }>): ObjectPublisher {
  let client: Promise<{ send: (object: PublishedObject) => Promise<unknown>; destroy: () => void }> | undefined;
  const connect = async () => {
    // CommonJS: Node and the esbuild bundle (scripts/bundle-lambda.mjs) both give its exports as `default`.
    const { S3Client, PutObjectCommand } = (await import('@aws-sdk/client-s3')).default;
    // Without an endpoint, AWS; region and credentials from the SDK's usual chain unless CRL_S3_REGION names one.
    const s3 = new S3Client({ endpoint: target.endpoint, region: target.region, forcePathStyle: target.forcePathStyle });
    return {
      send: ({ bucket, key, body, contentType, cacheControl }: PublishedObject) =>
        s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, CacheControl: cacheControl })),
      destroy: () => s3.destroy(),
    };
  };
  return {
    async put(object) {
      client ??= connect();
      await (await client).send(object);
    },
    close() {
      void client?.then(
        (connected) => connected.destroy(),
        () => undefined,
      );
    },
  };
}

/** Written beside the target and renamed over it, so a web server never serves a half-written file. */
function directoryPublisher(directory: string): ObjectPublisher {
  return {
    async put({ bucket, key, body }) {
      const file = path.join(directory, bucket, key);
      await mkdir(path.dirname(file), { recursive: true });
      const partial = `${file}.${randomBytes(6).toString('hex')}.partial`;
      try {
        await writeFile(partial, body);
        await rename(partial, file);
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },
    close() {},
  };
}

export function createObjectPublisher(publication: CrlPublicationConfig): ObjectPublisher {
  return publication.target.kind === 's3' ? s3Publisher(publication.target) : directoryPublisher(publication.target.directory);
}
