/**
 * The application factory: the server entry, the Lambda handler and the tests all build the service here.
 * Order: framework conventions (ids, bodies, errors, logs) -> authentication -> docs -> routes.
 */
import fastifyJwt from '@fastify/jwt';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jwtPluginOptions } from './auth/jwt.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { DatabaseHandle } from './db/database.ts';
import { errors } from './errors.ts';
import { answerClientError, registerErrorHandling, sendError, sendRejection, toAppError } from './http/error-handler.ts';
import { LOG_REDACT_PATHS, logRequestCompleted, prettyLogStream, registerAccessLog } from './http/plugins/access-log.ts';
import { registerAuth } from './http/plugins/auth.ts';
import { registerConsole } from './http/plugins/console.ts';
import { registerJsonBody } from './http/plugins/json-body.ts';
import { registerMetrics } from './http/plugins/metrics.ts';
import { registerOpenApi, type OpenApiSource } from './http/plugins/openapi.ts';
import { registerClosingRefusal } from './http/plugins/closing.ts';
import { HOST_CHECKED_BY_HOOK, registerHostRequirement } from './http/plugins/host-header.ts';
import { registerRequestIdHeader, requestAnswered, requestIdFor } from './http/plugins/request-id.ts';
import { schemaController, type PrecompiledSchemas, type SchemaCompilation } from './http/plugins/validation.ts';
import { isAcmeUrl, replyWithAcmeProblem } from './http/routes/acme/acme-routes.ts';
import { registerRoutes } from './http/routes/index.ts';
import { securityRequirements } from './schemas/common.ts';
import { JobRunner } from './jobs/job-runner.ts';
import { instrumentKeyStores } from './metrics/instrumented-key-stores.ts';
import { createMetrics } from './metrics/metrics.ts';
import { createJobs, createServices, type KeyStores, type Services } from './services/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
    jobRunner: JobRunner;
    config: Config;
  }
}

export interface BuildAppOptions {
  config: Config;
  database: DatabaseHandle;
  keyStores: KeyStores;
  clock?: Clock;
  /** Where JSON log lines go (default stdout); `false` turns logging off. */
  logDestination?: NodeJS.WritableStream | false;
  /** When route schemas are compiled (default: all of them at ready). */
  schemaCompilation?: SchemaCompilation;
  /** Validators and serializers generated when the Lambda bundle was built (with `on-first-use` only). */
  precompiledSchemas?: PrecompiledSchemas;
  /** The OpenAPI document served: generated from the routes (default), or the committed openapi/openapi.yaml. */
  openApi?: 'generated' | 'committed';
  /** Whether /console is served where it is built (default true); the Lambda function never serves it. */
  console?: boolean;
}

/** The folder of the nearest package.json above this module: src/ in development, dist/src/ when built for Lambda. */
function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
  }
  throw new Error('no package.json above the app module');
}

async function loggerOptions({ config, logDestination }: BuildAppOptions): Promise<FastifyServerOptions['logger']> {
  if (logDestination === false) return false;
  const stream = logDestination ?? (config.logFormat === 'pretty' ? await prettyLogStream() : undefined);
  return { level: config.logLevel, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' }, ...(stream ? { stream } : {}) };
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config, database, keyStores } = options;
  const clock = options.clock ?? systemClock;
  const schemaCompilation = options.schemaCompilation ?? 'at-ready';
  const schemas = await schemaController(schemaCompilation, options.precompiledSchemas);
  const app = Fastify({
    // TLS_CERT_FILE/TLS_KEY_FILE: HTTPS served here (ACME clients require it), e.g. with no proxy in front.
    ...(config.tls ? { https: { ...config.tls, ...HOST_CHECKED_BY_HOOK } } : { http: HOST_CHECKED_BY_HOOK }),
    logger: await loggerOptions(options),
    genReqId: requestIdFor,
    // Errors fastify raises before routing (a malformed URL, say) get the contract's body too.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      // Refused before routing, the request never reaches the onResponse hooks: what they do is done here.
      const answered = () => {
        logRequestCompleted(request, reply);
        requestAnswered(request);
      };
      // Under /acme/ an RFC 8555 problem document, as the ACME routes answer every other refusal.
      // fastify does not await this callback: a failure is logged and answered here, not left unhandled.
      if (isAcmeUrl(request.url)) {
        replyWithAcmeProblem(app.services.acme, error, request, reply)
          .catch((failure: unknown) => {
            request.log.error({ err: failure }, 'could not answer an ACME request refused before routing');
            if (!reply.sent) sendError(reply, toAppError(failure, request));
          })
          .finally(answered);
        return;
      }
      const refusal =
        error.code === 'FST_ERR_BAD_URL' ? errors.invalidParameter('the request URL is malformed') : toAppError(error, request);
      if (refusal.statusCode < 500) sendRejection(request, reply, refusal);
      else sendError(reply, refusal);
      answered();
    },
    clientErrorHandler: answerClientError,
    // Our own access log (http/plugins/access-log.ts) replaces fastify's per-request lines.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // fastify's default (0) lets a body trickle in forever: a byte every few seconds held a connection for good.
    requestTimeout: config.requestTimeoutMs,
    // fastify's own 503 while closing is not in the contract's format: registerClosingRefusal answers instead.
    return503OnClosing: false,
    // X-Forwarded-* only from the configured proxies: anyone else could pick their address (the public rate limit's
    // key) and the host an AK/SK signature is checked against.
    trustProxy: config.trustProxy.length > 0 ? config.trustProxy : false,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 2048 },
    schemaController: schemas.controller,
  });

  // Node enforces requestTimeout on a body only while headersTimeout is not longer (fastify leaves it at 60 s).
  app.server.headersTimeout = Math.min(app.server.headersTimeout, config.requestTimeoutMs);

  const metrics = createMetrics(database.poolStats);
  const deps = { config, database, keyStores: instrumentKeyStores(keyStores, metrics), clock, metrics, log: app.log };
  const services = createServices(deps);
  app.addHook('onClose', async () => services.revocation.publication?.close());
  app.addHook('onClose', async () => services.signatureVerifier.close());
  app.decorate('config', config);
  app.decorate('services', services);
  app.decorate('jobRunner', new JobRunner(createJobs(services, deps), () => clock.now(), app.log, metrics));

  registerRequestIdHeader(app);
  registerClosingRefusal(app);
  registerHostRequirement(app);
  app.addHook('onReady', schemas.loadCompilersIfNeeded);
  registerJsonBody(app, config.bodyLimitBytes);
  registerErrorHandling(app);
  registerAccessLog(app);
  registerMetrics(app, metrics, config.metricsToken);
  app.addHook('onSend', async (_request, reply, payload) => {
    if (String(reply.getHeader('content-type') ?? '').startsWith('application/json')) {
      reply.header('content-type', 'application/json;charset=UTF-8');
    }
    return payload;
  });
  await app.register(fastifyJwt, jwtPluginOptions(config));
  await registerAuth(app);
  app.addHook('onRoute', (route) => {
    // Swagger UI's and the console's files are public; the console's API calls carry the user's credential.
    if (route.url.startsWith('/docs') || route.url.startsWith('/console/')) route.config = { ...(route.config ?? {}), public: true };
    // The document states each operation's credentials from the same flag the auth hook reads.
    if (route.schema && route.schema.security === undefined) {
      // A fresh copy each: a shared array becomes a YAML alias per operation, and YAML parsers cap how many they follow.
      route.schema = { ...route.schema, security: route.config?.public ? [] : structuredClone(securityRequirements) };
    }
  });
  const root = packageRoot();
  const openApi: OpenApiSource =
    options.openApi === 'committed' ? { committed: path.join(root, 'openapi/openapi.yaml') } : { generated: true };
  await registerOpenApi(app, (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version, openApi);
  if (options.console !== false) await registerConsole(app, root);
  await app.register(registerRoutes);
  app.addHook('onClose', async () => {
    await app.jobRunner.stop();
  });
  return app;
}
