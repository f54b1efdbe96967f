/**
 * Local stand-ins for the AWS services the deployment reads and writes, for tests (there is no real AWS here):
 * - a Secrets Manager and SSM Parameter Store endpoint speaking their JSON protocol (GetSecretValue, GetParameter),
 *   which the real SDK v3 clients reach through their own AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_SSM;
 * - s3rver, an S3-compatible server, for `@aws-sdk/client-s3` with path-style requests (credentials S3RVER/S3RVER).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';

export interface ReceivedCall {
  target: string;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** Serves `secrets` (by SecretId) and `parameters` (by Name); both may be added to while it runs. */
export async function startSecretsEndpoint(secrets: Record<string, string>, parameters: Record<string, string>) {
  const received: ReceivedCall[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target']);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      received.push({ target, body, headers: request.headers });
      const answer = (status: number, value: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(value));
      };
      if (target === 'secretsmanager.GetSecretValue') {
        const value = secrets[String(body.SecretId)];
        if (value === undefined)
          return answer(400, { __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." });
        return answer(200, { ARN: body.SecretId, Name: 'x', SecretString: value, VersionId: '1' });
      }
      if (target === 'AmazonSSM.GetParameter') {
        const value = parameters[String(body.Name)];
        if (value === undefined) return answer(400, { __type: 'ParameterNotFound', message: '' });
        return answer(200, { Parameter: { Name: body.Name, Type: 'SecureString', Value: value, Version: 1 } });
      }
      answer(400, { __type: 'UnknownOperationException' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    received,
    /** What points the SDK's two clients here. */
    env: { AWS_ENDPOINT_URL_SECRETS_MANAGER: url, AWS_ENDPOINT_URL_SSM: url },
    close: () => {
      // The SDK keeps its connections open for the next call.
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// s3rver ships no types: what the tests use of it.
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: object) => { run(): Promise<AddressInfo>; close(): Promise<void> };

/** s3rver on a free port with these buckets, and an S3 client of its own for the test to look with. */
export async function startS3rver(buckets: string[]) {
  const storage = await mkdtemp(path.join(os.tmpdir(), 'pca-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: storage,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await s3rver.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  return {
    endpoint,
    client,
    /** s3rver accepts only its own fixed credentials, signed as AWS signs. */
    credentials,
    /** The deployment's settings that publish CRLs to these buckets, path style. */
    publicationEnv: {
      CRL_PUBLISH_BUCKETS: buckets.join(','),
      CRL_PUBLIC_BASE_URL: `${endpoint}/{bucket}`,
      CRL_S3_ENDPOINT: endpoint,
      CRL_S3_REGION: 'us-east-1',
      CRL_S3_FORCE_PATH_STYLE: 'true',
    },
    async close() {
      client.destroy();
      await s3rver.close();
      await rm(storage, { recursive: true, force: true });
    },
  };
}
