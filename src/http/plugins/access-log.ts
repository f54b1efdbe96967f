/**
 * One structured line per request: id, method, route, status, latency, and a refusal's error code and message.
 * Headers and bodies are never logged.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { rejectionOf } from '../error-handler.ts';

export function logRequestCompleted(request: FastifyRequest, reply: FastifyReply): void {
  request.log.info(
    {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
      latencyMs: Math.round(reply.elapsedTime * 100) / 100,
      domain: request.principal?.domainId,
      ...rejectionOf(request),
    },
    'request completed',
  );
}

export function registerAccessLog(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => logRequestCompleted(request, reply));
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

/**
 * Development logs (LOG_FORMAT=pretty): one human-readable line per request (`POST /v1/... 200 12.3 ms`), other
 * records with their fields below. Production keeps pino's JSON lines and never loads pino-pretty.
 */
export async function prettyLogStream(): Promise<NodeJS.WritableStream> {
  const { default: pretty } = await import('pino-pretty');
  return pretty({
    colorize: Boolean(process.stdout.isTTY),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,method,route,status,latencyMs,requestId',
    messageFormat: '{if method}{method} {route} {status} {latencyMs} ms {end}{if requestId}[{requestId}] {end}{msg}',
    singleLine: false,
  });
}
