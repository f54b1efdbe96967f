/**
 * The OpenAPI 3.1 document is generated from the route schemas (@fastify/swagger), served at /openapi.json,
 * browsable at /docs, and committed as openapi/openapi.yaml by `npm run openapi` (a test checks for drift).
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { ErrorBody } from '../schemas/common.ts';

export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  app.addSchema(ErrorBody);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Private CA Service API',
        version,
        description:
          'A private certificate authority, wire-compatible with Huawei Cloud CCM Private CA, with CRL/OCSP, URNs, billing records, JWT authentication and idempotent issuance.',
        license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
      },
      servers: [{ url: '/', description: 'This deployment' }],
      tags: [
        { name: 'operations', description: 'Health and readiness' },
        { name: 'certificate-authorities', description: 'Private CA hierarchy' },
        { name: 'certificates', description: 'Private certificates' },
        { name: 'public-pki', description: 'CRL, CA certificate and OCSP endpoints for relying parties' },
        { name: 'billing', description: 'Billing records' },
        { name: 'acme', description: 'ACME (RFC 8555): External Account Binding keys, and the per-CA ACME server under /acme/{ca_id}/' },
        { name: 'auth', description: 'Access keys, tokens, audit' },
      ],
      components: {
        securitySchemes: {
          sdkHmac: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'SDK-HMAC-SHA256 signed request (AK/SK) with X-Sdk-Date' },
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          authToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => String(json.$id ?? `def-${index}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
