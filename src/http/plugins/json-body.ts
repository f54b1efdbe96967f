/**
 * JSON bodies are kept as raw bytes too: request signatures hash exactly what was received (§3.2).
 * A body that is not JSON is only rejected after authentication (order of checks, §2), so the parse
 * error is held back here and raised by `raiseDeferredBodyError` once the caller is known.
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
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    request.deferredBodyError = errors.invalidParameter('request body is not valid JSON');
    return undefined;
  }
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

export function raiseDeferredBodyError(request: FastifyRequest): void {
  if (request.deferredBodyError) throw request.deferredBodyError;
}
