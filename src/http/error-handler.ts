/**
 * The one place where anything thrown becomes the contract's error body `{error_code, error_msg}` (§2, §7).
 * Client errors carry their message; unexpected ones get a generic message, details only in the log.
 */
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dbErrorKind } from '../db/errors.ts';
import { AppError, ErrorCode, clientErrorOf, errors } from '../errors.ts';
import { newRequestId, requestInFlightOn } from './plugins/request-id.ts';

/** Per-route override: which error code a schema violation under a body/query field gets (e.g. DN -> PCA.00020101). */
export type FieldErrorCodes = Record<string, ErrorCode>;

declare module 'fastify' {
  interface FastifyContextConfig {
    fieldErrorCodes?: FieldErrorCodes;
  }
}

const MAX_MESSAGE_LENGTH = 1024;

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `/distinguished_name/common_name` -> `distinguished_name.common_name`; names a missing or unknown property too. */
function fieldOf(issue: ValidationIssue): string {
  const base = (issue.instancePath ?? '').split('/').filter(Boolean).join('.');
  const property =
    issue.keyword === 'required'
      ? issue.params?.missingProperty
      : issue.keyword === 'additionalProperties'
        ? issue.params?.additionalProperty
        : '';
  return [base, String(property ?? '')].filter(Boolean).join('.');
}

function validationError(error: FastifyError, request: FastifyRequest): AppError {
  const issue = (error.validation?.[0] ?? {}) as ValidationIssue;
  const context = error.validationContext ?? 'body';
  const field = fieldOf(issue);
  const where = field || (context === 'body' ? 'request body' : context);
  // Ajv's enum message does not say which values: name them, as the service's own checks do.
  const allowed = issue.keyword === 'enum' && Array.isArray(issue.params?.allowedValues) ? issue.params.allowedValues : undefined;
  const message = `${where} ${allowed ? `must be one of ${allowed.join(', ')}` : (issue.message ?? 'is invalid')}`;
  const overrides = request.routeOptions.config?.fieldErrorCodes ?? {};
  const topField = field.split('.')[0];
  const code = overrides[field] ?? overrides[topField] ?? ErrorCode.InvalidParameter;
  return new AppError(400, code, message);
}

/** Errors fastify itself raises while routing and parsing, mapped to the contract. */
function frameworkError(error: FastifyError): AppError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, ErrorCode.InvalidParameter, 'request body is too large');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errors.invalidParameter('request body must be a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return errors.invalidParameter('Content-Length does not match the body');
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return errors.invalidParameter('request body is not valid JSON');
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new AppError(error.statusCode, ErrorCode.InvalidParameter, error.message);
  }
  return undefined;
}

export function toAppError(error: unknown, request: FastifyRequest): AppError {
  const clientError = clientErrorOf(error);
  if (clientError) return clientError;
  const fastifyError = error as FastifyError;
  if (fastifyError?.validation) return validationError(fastifyError, request);
  const mapped = fastifyError?.code || error instanceof SyntaxError ? frameworkError(fastifyError) : undefined;
  if (mapped) return mapped;
  const dbKind = dbErrorKind(error);
  if (dbKind === 'unavailable') return errors.unavailable('the database is temporarily unavailable', error);
  // A conflict that outlasted the retries (or a path that does not retry): it may well pass a moment later.
  if (dbKind === 'retryable') return errors.unavailable('the database was too busy with conflicting changes; retry', error);
  return new AppError(500, ErrorCode.Internal, 'internal error', { cause: error });
}

export function sendError(reply: FastifyReply, error: AppError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers ?? {})) reply.header(name, value);
  return reply
    .code(error.statusCode)
    .type('application/json;charset=UTF-8')
    .send({ error_code: error.code, error_msg: error.message.slice(0, MAX_MESSAGE_LENGTH) });
}

/** What Node's HTTP parser refused before any request existed: the status, and the contract's body for it. */
function clientErrorAnswer(error: NodeJS.ErrnoException): { status: number; reason: string; message: string } {
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { status: 408, reason: 'Request Timeout', message: 'the request took too long to arrive' };
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, reason: 'Request Header Fields Too Large', message: 'the request headers are too large' };
  }
  return { status: 400, reason: 'Bad Request', message: 'the request is not well-formed HTTP' };
}

/**
 * fastify's clientErrorHandler: a request the HTTP parser refused (a malformed header line, an oversized head, a bad
 * Content-Length, a body too slow to arrive) gets the contract's body and an X-Request-Id like every other error,
 * written on the raw socket: the id of the request in flight on the connection when there is one (a 408 mid-body),
 * so that the client's id, the access line and the audit event agree.
 */
export function answerClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const { status, reason, message } = clientErrorAnswer(error);
    const requestId = requestInFlightOn(socket) ?? newRequestId();
    const body = JSON.stringify({ error_code: ErrorCode.InvalidParameter, error_msg: message });
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
    );
    this.log.info({ requestId, status, errorCode: ErrorCode.InvalidParameter, errorMsg: message }, 'request refused by the HTTP parser');
  }
  socket.destroy(error);
}

/** A refusal's code and message, carried to the request's one access line (http/plugins/access-log.ts). */
const rejections = new WeakMap<FastifyRequest, { errorCode: string; errorMsg: string }>();
export const rejectionOf = (request: FastifyRequest) => rejections.get(request);

/** Notes a refusal for the access line: its code (the contract's, or an ACME problem type) and message. */
export function noteRejection(request: FastifyRequest, errorCode: string, errorMsg: string): void {
  rejections.set(request, { errorCode, errorMsg });
}

/** Answers a client error (4xx), noting it for the access line. */
export function sendRejection(request: FastifyRequest, reply: FastifyReply, error: AppError): FastifyReply {
  noteRejection(request, error.code, error.message);
  return sendError(reply, error);
}

/**
 * A server-side failure as an anonymous caller (a public CRL or CA certificate fetch) sees it when its message may
 * name the deployment (a key store's token label, say): the status, code and headers (Retry-After), not the message.
 * The log keeps the message.
 */
function anonymousFailure(error: AppError): AppError {
  const message = error.statusCode === 503 ? 'the service is temporarily unavailable; retry later' : 'internal error';
  return new AppError(error.statusCode, error.code, message, { headers: error.headers });
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const appError = toAppError(error, request);
    if (appError.statusCode < 500) return sendRejection(request, reply, appError);
    request.log.error({ err: appError.cause ?? error, errorMsg: appError.message }, 'request failed');
    const hidden = request.principal === undefined && (appError.statusCode === 500 || appError.namesInfrastructure);
    return sendError(reply, hidden ? anonymousFailure(appError) : appError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendRejection(request, reply, errors.notFound(`route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
