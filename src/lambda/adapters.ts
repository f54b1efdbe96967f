/**
 * What turns the app and the jobs into Lambda handlers. The entry modules beside this one (http.ts, jobs.ts,
 * migrate.ts; serverless.yml names them) build what they serve at init, so a bad configuration fails the cold
 * start with one clear error instead of every request.
 */
import awsLambdaFastify from '@fastify/aws-lambda';
import type { FastifyInstance } from 'fastify';
import { ErrorCode } from '../errors.ts';
import type { JobRunner } from '../jobs/job-runner.ts';

type ProxyHandler = ReturnType<typeof awsLambdaFastify>;

/** Bodies API Gateway may pass through as text; everything else (DER, zips, Swagger UI's images) is base64. */
const TEXTUAL_MEDIA_TYPE = /^(text\/|application\/([\w.-]+\+)?(json|xml|yaml|javascript)$)/;

/**
 * `@fastify/aws-lambda` returns every body as UTF-8 text unless told otherwise, which corrupts CRLs, OCSP
 * responses, DER certificates and zips: mark each non-text response `isBase64Encoded` (HTTP API and REST API
 * alike; a REST API also needs binaryMediaTypes `*\/*` so that binary request bodies arrive base64).
 */
export function isBinaryResponse(response: { headers: Record<string, unknown> }): boolean {
  const contentType = String(response.headers['content-type'] ?? '')
    .split(';', 1)[0]!
    .trim()
    .toLowerCase();
  return contentType !== '' && !TEXTUAL_MEDIA_TYPE.test(contentType);
}

/**
 * The event as the client sent the request: a REST API (1.0) event's headers in lower case (below); an HTTP API (2.0)
 * event with its URL as the client sent it. `@fastify/aws-lambda` rebuilds the query from the
 * gateway's decoded `queryStringParameters`, splitting any value holding a comma (`name=Acme%2C%20Inc` became an
 * array: 400) and re-encoding the rest, so an AK/SK signature over the sent query no longer verified. The gateway
 * hands the path over percent-decoded: a `#`, `?` or `%` the client had escaped is escaped again, or the URL built
 * from it would end the path there (or decode it twice).
 */
export function asClientSent<E>(event: E): E {
  const v2 = event as { version?: string; rawPath?: string; rawQueryString?: string };
  if (v2?.version !== '2.0') return withLowerCaseHeaders(event);
  const rawPath = (v2.rawPath ?? '/').replace(/[%?#]/g, (character) => encodeURIComponent(character));
  if (!v2.rawQueryString) return { ...event, rawPath };
  return { ...event, rawPath: `${rawPath}?${v2.rawQueryString}`, queryStringParameters: undefined };
}

/**
 * A REST API (1.0) event keeps its headers' case, while `@fastify/aws-lambda` adds its own in lower case: the
 * gateway's request id as `x-request-id` would then stand beside the client's `X-Request-Id`, and win.
 */
function withLowerCaseHeaders<E>(event: E): E {
  const v1 = event as { headers?: Record<string, string> | null; multiValueHeaders?: Record<string, string[]> | null };
  if (!v1?.headers && !v1?.multiValueHeaders) return event;
  const lower = <T>(headers: Record<string, T> | null | undefined) =>
    headers ? Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value])) : headers;
  return { ...event, headers: lower(v1.headers), multiValueHeaders: lower(v1.multiValueHeaders) };
}

/**
 * Hop-by-hop headers of a streamed body (the CSV export): Lambda answers with the whole body at once, and a
 * `Transfer-Encoding: chunked` beside a plain body misleads the gateway and the client.
 */
const HOP_BY_HOP = ['transfer-encoding', 'connection', 'keep-alive'];

/** The most a synchronous Lambda invocation may return (its JSON response, body base64 or not): 6 MB. */
export const LAMBDA_RESPONSE_BYTES = 6 * 1024 * 1024;

/**
 * An answer larger than Lambda may return: Lambda would refuse it and the gateway answer a bare 502. Where the
 * client can ask for less (the billing export), a 400 says how; elsewhere (a CRL past 6 MB, say) a 500 says why, as
 * the contract's error, and what serves it instead.
 */
function tooLargeForLambda(path: string, bytes: number, limit: number, requestId: unknown) {
  const megabytes = (value: number) => (value / 1024 / 1024).toFixed(1);
  const tooLarge = `the answer is ${megabytes(bytes)} MB, more than a Lambda function may return (${megabytes(limit)} MB)`;
  const narrowable = path === '/v1/billing-records';
  return {
    statusCode: narrowable ? 400 : 500,
    headers: { 'content-type': 'application/json; charset=utf-8', ...(typeof requestId === 'string' && { 'x-request-id': requestId }) },
    isBase64Encoded: false,
    body: JSON.stringify(
      narrowable
        ? {
            error_code: ErrorCode.InvalidParameter,
            error_msg: `${tooLarge}: ask for less (a narrower start_time and end_time, or JSON pages with limit and offset)`,
          }
        : {
            error_code: ErrorCode.Internal,
            error_msg: `${tooLarge}; a CRL this large is served from its published copy (CRL_PUBLISH_BUCKETS)`,
          },
    ),
  };
}

/** An API Gateway v2 / v1 proxy handler over a ready app; `responseBytesLimit` is Lambda's, lower in tests. */
export function httpHandlerFor(app: FastifyInstance, responseBytesLimit = LAMBDA_RESPONSE_BYTES): ProxyHandler {
  const handle = awsLambdaFastify(app, { decorateRequest: false, serializeLambdaArguments: false, enforceBase64: isBinaryResponse });
  return (async (event, context) => {
    const result = await handle(asClientSent(event), context);
    for (const name of HOP_BY_HOP) {
      delete result.headers?.[name];
      delete (result as { multiValueHeaders?: Record<string, unknown> }).multiValueHeaders?.[name];
    }
    const bytes = Buffer.byteLength(JSON.stringify(result));
    if (bytes <= responseBytesLimit) return result;
    const { rawPath, path } = event as { rawPath?: string; path?: string };
    app.log.warn({ bytes, limit: responseBytesLimit, path: rawPath ?? path }, 'an answer larger than a Lambda response was refused');
    return tooLargeForLambda(rawPath ?? path ?? '', bytes, responseBytesLimit, result.headers?.['x-request-id']);
  }) as ProxyHandler;
}

/** A scheduled event names its job: `{"job": "ca-lifecycle"}`. */
export function jobHandlerFor(runner: JobRunner) {
  return async (event: { job?: string }) => {
    if (!event?.job) throw new Error('scheduled event must name a job: {"job": "<name>"}');
    return (await runner.runOnce(event.job)) ?? {};
  };
}
