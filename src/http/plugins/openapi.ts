/**
 * The OpenAPI 3.1 document is generated from the route schemas (@fastify/swagger), served at /openapi.json,
 * browsable at /docs, and committed as openapi/openapi.yaml by `npm run openapi` (a test checks for drift, and
 * test/openapi/generated-clients.test.ts drives clients generated from it).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import path from 'node:path';
import { ErrorBody } from '../../schemas/common.ts';
import { CertificateAuthoritySchema } from '../routes/ca/ca-schemas.ts';
import { CertificateSchema } from '../routes/certificates/certificate-schemas.ts';
import { addSharedResponses, responseComponents } from './openapi-responses.ts';
import { schemaController } from './validation.ts';

const SIGNATURE_SCHEME = [
  'AK/SK signed request, as Huawei Cloud SDKs send it (docs/api-reference.md §3.2). The client computes',
  '`Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, Signature=<hex>` per request over the',
  'method, path, sorted query, the signed headers and the SHA-256 of the body. `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`,',
  'within 15 minutes of the server clock) must be among the signed headers (`Host` is checked when signed); a temporary key adds',
  '`X-Security-Token` (from POST /v3.0/OS-CREDENTIAL/securitytokens), signed too. SDK-HMAC-SM3,',
  'SDK-ECDSA-P256-SHA256 and V11-HMAC-SHA256 are accepted as well. Not a static value: configure a signing',
  'interceptor, and send no Bearer token or X-Auth-Token with it (two credentials are a 401).',
].join(' ');

/**
 * Where /openapi.json and /docs take the document from: `generated` from the route schemas while the app is built
 * (the server, the tests, `npm run openapi`), or the `committed` openapi/openapi.yaml, which the drift test keeps
 * equal to it, with @fastify/swagger, Swagger UI and @fastify/static loaded only when the document or /docs is first
 * asked for (a Lambda cold start: loading and registering them cost about a tenth of it).
 */
export type OpenApiSource = { generated: true } | { committed: string };

export async function registerOpenApi(app: FastifyInstance, version: string, source: OpenApiSource): Promise<void> {
  app.addSchema(ErrorBody);
  // Named components, referenced by every route that returns them (one generated type each).
  app.addSchema(CertificateAuthoritySchema);
  app.addSchema(CertificateSchema);
  if ('committed' in source) return serveCommittedDocument(app, source.committed);
  const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([import('@fastify/swagger'), import('@fastify/swagger-ui')]);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Private CA Service API',
        version,
        description:
          'A private certificate authority, wire-compatible with Huawei Cloud CCM Private CA, with CRL/OCSP, URNs, billing records, JWT authentication and idempotent issuance. ' +
          'Each authenticated operation takes exactly one credential: a Bearer JWT, an X-Auth-Token JWT, or an AK/SK signature; a request carrying two is refused with 401.',
        license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
      },
      servers: [{ url: '/', description: 'This deployment' }],
      tags: [
        { name: 'operations', description: 'Health and readiness probes, and the readiness details of this deployment' },
        { name: 'authentication', description: 'Token exchange, temporary keys and the IAM look-ups Huawei SDK credentials make' },
        { name: 'access-keys', description: 'AK/SK pairs of a domain and the actions each may perform' },
        { name: 'audit', description: "The domain's audit log: every state change and every refused mutation" },
        {
          name: 'certificate-authorities',
          description:
            'Private CA hierarchy: create, activate, import, export, enable, disable, delete, restore, revoke; CRL, OCSP, issuance and ACME policies; CA tags',
        },
        {
          name: 'certificates',
          description:
            'Private certificates: issue (server key or CSR), list, show, export (JSON or zip), revoke, delete; certificate tags',
        },
        { name: 'public-pki', description: 'Unauthenticated CRL, CA certificate and OCSP endpoints for relying parties (binary bodies)' },
        { name: 'billing', description: 'Billing records and their summary' },
        { name: 'acme', description: 'ACME (RFC 8555): External Account Binding keys, and the per-CA ACME server under /acme/{ca_id}/' },
      ],
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description:
              'A JWT from POST /v1/auth/tokens (or `npm run dev-token`) as `Authorization: Bearer <JWT>`. Configure this scheme alone: no X-Auth-Token and no signature with it.',
          },
          authToken: {
            type: 'apiKey',
            in: 'header',
            name: 'X-Auth-Token',
            description:
              "The same JWT in Huawei's token header, `X-Auth-Token: <JWT>`. Configure this scheme alone: no Authorization header with it.",
          },
          sdkHmac: { type: 'apiKey', in: 'header', name: 'Authorization', description: SIGNATURE_SCHEME },
        },
        ...responseComponents,
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => String(json.$id ?? `def-${index}`) },
    transformObject: addSharedResponses,
  });
  await app.register(swaggerUi, SWAGGER_UI);
  serveOpenApiJson(app, () => app.swagger());
}

/**
 * Swagger UI at /docs shares the console's origin, where the console keeps its token in sessionStorage: it is served
 * with a CSP naming its own scripts' hashes (@fastify/swagger-ui's), may not be framed, sends no Referer and is not
 * sniffed. Requests are not upgraded to https: a development server speaks http.
 */
const SWAGGER_UI = {
  routePrefix: '/docs',
  staticCSP: true,
  transformStaticCSP: (csp: string) =>
    csp.replace("frame-ancestors 'self'", "frame-ancestors 'none'").replace(/\s*upgrade-insecure-requests;?/, ''),
  uiHooks: {
    onRequest(_request: FastifyRequest, reply: FastifyReply, done: () => void) {
      reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer').header('x-frame-options', 'DENY');
      done();
    },
  },
};

/**
 * GET /openapi.json, public: the document serialised on the first request and its bytes kept. Serialising its 164 KB
 * for each request took 3.4–4.8 ms of CPU (0.9 ms with the bytes kept), which anyone could ask for at the public rate
 * limit.
 */
function serveOpenApiJson(app: FastifyInstance, document: () => unknown): void {
  let json: Promise<Buffer> | undefined;
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    json ??= Promise.resolve(document()).then(
      (value) => Buffer.from(JSON.stringify(value)),
      (error: unknown) => {
        json = undefined;
        throw error;
      },
    );
    return reply.type('application/json; charset=utf-8').send(await json);
  });
}

/** Response headers that describe the forwarded body itself, which the outer reply sets anew. */
const HOP_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'date', 'keep-alive']);

/**
 * /openapi.json and /docs from the committed document, served by a second fastify app (@fastify/swagger in static
 * mode and Swagger UI) that is built on the first such request; requests reach it through `inject`.
 */
function serveCommittedDocument(app: FastifyInstance, documentPath: string): void {
  let docs: Promise<FastifyInstance> | undefined;
  const docsApp = async () => {
    const [{ default: swagger }, { default: swaggerUi }, schemas] = await Promise.all([
      import('@fastify/swagger'),
      import('@fastify/swagger-ui'),
      // The app's own compilers: the Lambda bundle leaves fastify's defaults out (scripts/bundle-lambda.mjs).
      schemaController('on-first-use'),
    ]);
    const inner = Fastify({ schemaController: schemas.controller });
    await inner.register(swagger, { mode: 'static', specification: { path: documentPath, baseDir: path.dirname(documentPath) } });
    await inner.register(swaggerUi, SWAGGER_UI);
    await inner.ready();
    return inner;
  };
  const ready = () =>
    (docs ??= docsApp().catch((error: unknown) => {
      docs = undefined;
      throw error;
    }));
  const forward = async (request: FastifyRequest, reply: FastifyReply) => {
    const response = await (await ready()).inject({ method: request.method as 'GET', url: request.url, headers: request.headers });
    // The app's own 404, in the contract's format, for a file Swagger UI does not have.
    if (response.statusCode === 404) return reply.callNotFound();
    const headers = Object.fromEntries(Object.entries(response.headers).filter(([name]) => !HOP_HEADERS.has(name)));
    return reply.code(response.statusCode).headers(headers).send(response.rawPayload);
  };
  const options = { config: { public: true }, schema: { hide: true } };
  serveOpenApiJson(app, async () => (await ready()).swagger());
  app.get('/docs', options, forward);
  app.get('/docs/*', options, forward);
}
