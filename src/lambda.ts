/**
 * AWS Lambda entry points (serverless.yml): the same app as the server behind an HTTP API, one scheduled
 * function per job, and a migration function run at deploy time (cold starts do not migrate).
 */
import awsLambdaFastify from '@fastify/aws-lambda';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';
import { applyMigrations } from './db/migrate.ts';
import { openRuntime } from './runtime.ts';

type ProxyHandler = ReturnType<typeof awsLambdaFastify>;

/** Bodies API Gateway may pass through as text; everything else (DER, zips, Swagger UI's images) is base64. */
const TEXTUAL_MEDIA_TYPE = /^(text\/|application\/([\w.-]+\+)?(json|xml|yaml|javascript)$)/;

/**
 * `@fastify/aws-lambda` returns every body as UTF-8 text unless told otherwise, which corrupts CRLs, OCSP
 * responses, DER certificates and zips: mark each non-text response `isBase64Encoded` (HTTP API and REST API
 * alike; a REST API also needs binaryMediaTypes `*\/*` so that binary request bodies arrive base64).
 */
export function isBinaryResponse(response: { headers: Record<string, unknown> }): boolean {
  const contentType = String(response.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  return contentType !== '' && !TEXTUAL_MEDIA_TYPE.test(contentType);
}

/** Wraps an app (built once per container) as an API Gateway v2 / v1 proxy handler. */
export function httpHandlerFor(getApp: () => Promise<FastifyInstance>): ProxyHandler {
  let proxy: ProxyHandler | undefined;
  return (async (event: unknown, context: unknown) => {
    const app = await getApp();
    proxy ??= awsLambdaFastify(app, { decorateRequest: false, serializeLambdaArguments: false, enforceBase64: isBinaryResponse });
    return (proxy as (e: unknown, c: unknown) => Promise<unknown>)(event, context);
  }) as ProxyHandler;
}

/** A scheduled event names its job: `{"job": "ca-lifecycle"}`. */
export function jobHandlerFor(getApp: () => Promise<FastifyInstance>) {
  return async (event: { job?: string }) => {
    const app = await getApp();
    if (!event?.job) throw new Error('scheduled event must name a job: {"job": "<name>"}');
    return (await app.jobRunner.runOnce(event.job)) ?? {};
  };
}

let appPromise: Promise<FastifyInstance> | undefined;
function deployedApp(): Promise<FastifyInstance> {
  appPromise ??= (async () => {
    const config = loadConfig();
    const runtime = await openRuntime(config, { migrate: false });
    const app = await buildApp({ config, database: runtime.database, keyStores: runtime.keyStores });
    app.addHook('onClose', () => runtime.close());
    await app.ready();
    return app;
  })();
  return appPromise;
}
export const handler = httpHandlerFor(deployedApp);
export const jobs = jobHandlerFor(deployedApp);
export async function migrate(): Promise<{ applied: string[] }> {
  const config = loadConfig();
  if (!config.databaseUrl) throw new Error('DATABASE_URL is required to migrate a Lambda deployment');
  return { applied: await applyMigrations({ url: config.databaseUrl }) };
}
