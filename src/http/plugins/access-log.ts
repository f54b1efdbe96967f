/** One structured line per request: id, method, route, status, latency. Headers and bodies are never logged. */
import type { FastifyInstance } from 'fastify';

export function registerAccessLog(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        latencyMs: Math.round(reply.elapsedTime * 100) / 100,
        domain: request.principal?.domainId,
      },
      'request completed',
    );
  });
}

/** Paths pino blanks out wherever they appear in a log object: credentials and key material. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers["x-security-token"]',
  'headers.authorization',
  'headers["x-auth-token"]',
  'headers["x-security-token"]',
  '*.private_key',
  '*.privateKey',
  '*.secret',
  '*.password',
  '*.token',
  '*.keyRef',
  '*.sealedPrivateKey',
  '*.sealedSecret',
  'private_key',
  'secret',
  'password',
  'token',
];
