/**
 * What every operation of the document shares, added once to the generated document rather than to each route:
 * the 400/413/415/429/500/503 responses every route can give (a NUL in the URL, body limit, media type, rate limit,
 * the error handler), the X-Request-Id
 * header on every response, and a description for responses whose schema has none.
 */
import { OPTIONAL_BODY_MARK } from '../../schemas/common.ts';

// Fresh objects at each use: a shared one becomes a YAML alias, and parsers cap how many they follow.
const errorSchema = () => ({ $ref: '#/components/schemas/ErrorBody' });
const requestId = () => ({ $ref: '#/components/headers/X-Request-Id' });
const retryAfter = () => ({ $ref: '#/components/headers/Retry-After' });

const errorResponse = (description: string, retry = false) => ({
  description,
  headers: { 'X-Request-Id': requestId(), ...(retry ? { 'Retry-After': retryAfter() } : {}) },
  content: { 'application/json': { schema: errorSchema() } },
});

export const responseComponents = {
  headers: {
    'X-Request-Id': {
      description: "The request's id (the caller's own X-Request-Id when it sent a sane one); quoted in logs and audit events",
      schema: { type: 'string' as const, pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    },
    'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer' as const, minimum: 1 } },
  },
  responses: {
    BadRequest: errorResponse('The request URL holds a NUL character (%00), or a parameter is malformed'),
    UnsupportedMediaType: errorResponse('A request body (even an empty one) sent with a Content-Type other than application/json'),
    PayloadTooLarge: errorResponse('Request body larger than the configured limit (BODY_LIMIT_BYTES; 64 KiB for OCSP requests)'),
    TooManyRequests: errorResponse(
      'Rate limit of the credential or of its domain (or of the client address on public routes) reached',
      true,
    ),
    InternalError: errorResponse('Unexpected failure; the details are in the log under the X-Request-Id'),
    ServiceUnavailable: errorResponse('A dependency (database, key store) is temporarily unavailable', true),
  },
};

const WITH_BODY = ['post', 'put', 'patch', 'delete'];
const SHARED: [status: string, name: string, methods?: string[]][] = [
  ['400', 'BadRequest'],
  ['413', 'PayloadTooLarge', WITH_BODY],
  ['415', 'UnsupportedMediaType', WITH_BODY],
  ['429', 'TooManyRequests'],
  ['500', 'InternalError'],
  ['503', 'ServiceUnavailable'],
];

type Response = { $ref?: string; description?: string; headers?: Record<string, unknown> };
type Operation = { summary?: string; responses: Record<string, Response>; requestBody?: { required?: boolean } } & {
  [OPTIONAL_BODY_MARK]?: boolean;
};

/** @fastify/swagger's transformObject: the document object it built, completed in place. */
export function addSharedResponses<A extends object, B extends object>(built: { openapiObject: A } | { swaggerObject: B }): A | B {
  const document = 'openapiObject' in built ? built.openapiObject : built.swaggerObject;
  const paths = (document as { paths: Record<string, Record<string, Operation>> }).paths;
  for (const operations of Object.values(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      // A route whose body fields all have defaults (route-options.ts optionalBody) takes no body too.
      if (operation[OPTIONAL_BODY_MARK]) {
        delete operation[OPTIONAL_BODY_MARK];
        if (operation.requestBody) operation.requestBody.required = false;
      }
      const { responses } = operation;
      for (const [status, response] of Object.entries(responses)) {
        if (response.$ref) continue;
        // @fastify/swagger's placeholder: the schema had no description, the operation's summary says what comes back.
        if (response.description === 'Default Response') response.description = operation.summary ?? 'Success';
        // A route's own 503 is answered with Retry-After, as the shared one is.
        const retry = status === '503' ? { 'Retry-After': retryAfter() } : {};
        responses[status] = { ...response, headers: { 'X-Request-Id': requestId(), ...retry, ...response.headers } };
      }
      for (const [status, name, methods] of SHARED) {
        if (!responses[status] && (!methods || methods.includes(method))) responses[status] = { $ref: `#/components/responses/${name}` };
      }
    }
  }
  return document;
}
