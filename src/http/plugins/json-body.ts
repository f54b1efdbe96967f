/**
 * JSON bodies are kept as raw bytes too: request signatures hash exactly what was received (§3.2).
 * A body that is not JSON is only rejected after authentication (order of checks, §2), so the parse
 * error is held back here and raised by `raiseDeferredInputError` once the caller is known.
 *
 * U+0000 means nothing anywhere in this API and no Postgres text value can hold it, so a NUL in a JSON string
 * (`\u0000`, the only way JSON can carry one) or in the URL (`%00`) is refused the same way, before it reaches a
 * query as a 500.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, ErrorCode, errors } from '../../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    deferredBodyError?: Error;
  }
}

function parseJson(request: FastifyRequest, raw: Buffer): unknown {
  request.rawBody = raw;
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    request.deferredBodyError = errors.invalidParameter('request body is not valid JSON');
    return undefined;
  }
  if (text.includes('\\u0000') && containsNul(body)) {
    request.deferredBodyError = errors.invalidParameter('request body contains a NUL character (\\u0000)');
    return undefined;
  }
  return body;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([key, item]) => key.includes('\0') || containsNul(item));
}

export function registerJsonBody(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request, raw, done) => {
    done(null, parseJson(request, raw as Buffer));
  });
  // The contract parses a JSON body sent without Content-Type [SR]; fastify routes that case to this parser.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (request, raw, done) => {
    if (request.headers['content-type'] === undefined) return done(null, parseJson(request, raw as Buffer));
    // Other media types are refused after authentication, like malformed JSON.
    request.rawBody = raw as Buffer;
    request.deferredBodyError = new AppError(415, ErrorCode.InvalidParameter, 'Content-Type must be application/json');
    done(null, undefined);
  });
}

export function raiseDeferredInputError(request: FastifyRequest): void {
  if (request.deferredBodyError) throw request.deferredBodyError;
  if (request.url.includes('%00')) throw errors.invalidParameter('request URL contains a NUL character (%00)');
}
