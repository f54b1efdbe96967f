/**
 * JSON bodies are kept as raw bytes too: request signatures hash exactly what was received (§3.2).
 * A body that is not JSON is only rejected after authentication (order of checks, §2), so the parse
 * error is held back here and raised by `raiseDeferredInputError` once the caller is known, and only by a route with a
 * body schema: "endpoints that take no body ignore one" (§2), malformed or not. Their raw bytes are still kept, for the
 * body hash of a signature; a media type other than JSON is refused 415 on every route (contract-notes).
 *
 * Two characters a JSON string can carry only as escapes are refused the same way, before they reach a query as a
 * 500 or are stored altered: U+0000, which no Postgres text value holds (in the URL too, as `%00`), and an unpaired
 * UTF-16 surrogate (`\ud800`), which has no UTF-8 form (jsonb refuses it, text would store U+FFFD instead).
 *
 * No request of the contract nests deeper than four levels. A body nested deeper than MAX_JSON_DEPTH is refused
 * before JSON.parse, which would otherwise spend half a second of the event loop on 4 MB of brackets.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, ErrorCode, errors } from '../../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    /** A body refused whatever the route (a media type other than JSON). */
    deferredBodyError?: Error;
    /** A JSON body that cannot be taken (not JSON, too deep, a refused character): refused only where a body is read. */
    deferredJsonError?: Error;
  }
}

function parseJson(request: FastifyRequest, raw: Buffer): unknown {
  request.rawBody = raw;
  if (raw.length === 0) return undefined;
  if (nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
    request.deferredJsonError = errors.invalidParameter(`request body nests deeper than ${MAX_JSON_DEPTH} levels`);
    return undefined;
  }
  const text = raw.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    request.deferredJsonError = errors.invalidParameter('request body is not valid JSON');
    return undefined;
  }
  const refused = MAY_HOLD_REFUSED.test(text) ? refusedCharacterIn(body) : undefined;
  if (refused) {
    request.deferredJsonError = errors.invalidParameter(`request body contains ${refused}`);
    return undefined;
  }
  return body;
}

export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const [OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT] = [0x5b, 0x5d, 0x7b, 0x7d];

/** Whether brackets outside strings open more than `limit` levels at some point (a byte scan, about 1 µs per KB). */
function nestsDeeperThan(raw: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > limit) return true;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** The escapes that can make one (cheap to look for in the raw text, so most bodies are never walked). */
const MAY_HOLD_REFUSED = /\\u(0000|[dD][89a-fA-F])/;
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function refusedCharacter(text: string): string | undefined {
  if (text.includes('\0')) return 'a NUL character (\\u0000)';
  if (UNPAIRED_SURROGATE.test(text)) return 'an unpaired UTF-16 surrogate';
  return undefined;
}

/** What the first refused character found in the body's strings (keys included) is, if any. */
function refusedCharacterIn(body: unknown): string | undefined {
  const pending: unknown[] = [body];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      const refused = refusedCharacter(value);
      if (refused) return refused;
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        const refused = refusedCharacter(key);
        if (refused) return refused;
        pending.push(item);
      }
    }
  }
  return undefined;
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
  if (request.deferredJsonError && request.routeOptions.schema?.body !== undefined) throw request.deferredJsonError;
  if (request.url.includes('%00')) throw errors.invalidParameter('request URL contains a NUL character (%00)');
}
