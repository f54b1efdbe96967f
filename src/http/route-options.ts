/**
 * The one way a route file declares a route's options: permission, audit name, OpenAPI tag and text, the request
 * schemas and the documented responses. Registered on an instance with the TypeBox type provider (`TypedApp`), the
 * request schemas type `request.params`, `request.query`, `request.body` and `request.headers` (no casts).
 */
import type { SwaggerTransform } from '@fastify/swagger';
import type { FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { TSchema } from 'typebox';
import type { Action } from '../auth/actions.ts';
import { NoContent, OPTIONAL_BODY_MARK, errorResponses } from '../schemas/common.ts';
import type { FieldErrorCodes } from './error-handler.ts';

/** Every route plugin takes this: an app whose request parts are typed from the route schemas. */
export type TypedApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

type ErrorStatus = 400 | 401 | 403 | 404;

/** What every route declares: who may call it and the request schemas (which type the handler's request). */
interface RequestSpec<Params, Query, Body, Headers> {
  /** No credential: the route is open to anyone (health probes, the public PKI endpoints, ACME's JWS-signed calls). */
  public?: boolean;
  /** The permission the credential needs (§10.7); absent on routes signed by an access key only. */
  action?: Action;
  /** The operation's own audit action, when it is not the permission (refused calls are audited under it). */
  auditAction?: string;
  /** Only an AK/SK signature authenticates (IAM-style routes), no token. */
  signedOnly?: boolean;
  /** The credential must hold every action of the catalogue (access keys, the audit log). */
  allActions?: boolean;
  /** The route creates a credential: a temporary access key (X-Security-Token) is refused with a 403. */
  mintsCredential?: boolean;
  headers?: Headers;
  params?: Params;
  query?: Query;
  body?: Body;
  /** A body limit of its own, below the app's. */
  bodyLimit?: number;
  fieldErrorCodes?: FieldErrorCodes;
  /**
   * Every field of the body has a default: no body, or `null` (a Go client leaving its Body nil), is taken as `{}`,
   * and the document marks the request body optional. A malformed body is still refused (json-body.ts).
   */
  optionalBody?: boolean;
}

/** A route left out of the OpenAPI document, with no response schema: it answers in another protocol's format. */
interface HiddenRouteSpec<Params, Query, Body, Headers> extends RequestSpec<Params, Query, Body, Headers> {
  hide: true;
}

interface DocumentedRouteSpec<Params, Query, Body, Headers> extends RequestSpec<Params, Query, Body, Headers> {
  hide?: false;
  tag: string;
  summary: string;
  description?: string;
  operationId: string;
  security?: Record<string, string[]>[];
  /** The request body the document shows when the route validates none (its own parser reads raw bytes). */
  documentedBody?: unknown;
  /** The 200 body; absent for 204 actions. */
  ok?: unknown;
  /** The error responses documented; default 400, 401, 403, and 404 with path parameters or `notFound`. */
  errors?: readonly ErrorStatus[];
  /** The 404's own description; also documents one on a route without path parameters (a body field names a resource). */
  notFound?: string;
  /** Responses replacing or adding to the ones above (a 201, a binary 200, a 409). */
  responses?: Record<number, unknown>;
}

export type RouteSpec<Params, Query, Body, Headers> =
  | DocumentedRouteSpec<Params, Query, Body, Headers>
  | HiddenRouteSpec<Params, Query, Body, Headers>;

/** Fastify's route options with the schema types kept, so the type provider can infer the request parts. */
export interface RouteOptions<Params, Query, Body, Headers> {
  config: {
    public?: boolean;
    action?: Action;
    auditAction?: string;
    signedOnly?: boolean;
    allActions?: boolean;
    mintsCredential?: boolean;
    fieldErrorCodes?: FieldErrorCodes;
    swaggerTransform?: SwaggerTransform;
  };
  schema: { params: Params; querystring: Query; body: Body; headers: Headers; response?: Record<number, unknown> } & Record<
    string,
    unknown
  >;
  bodyLimit?: number;
  preValidation?: (request: FastifyRequest) => Promise<void>;
}

/** optionalBody's hook: runs before validation, so the schema judges `{}`. */
async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

export function routeOptions<
  Params extends TSchema | undefined = undefined,
  Query extends TSchema | undefined = undefined,
  Body extends TSchema | undefined = undefined,
  Headers extends TSchema | undefined = undefined,
>(spec: RouteSpec<Params, Query, Body, Headers>): RouteOptions<Params, Query, Body, Headers> {
  const config = {
    ...(spec.public ? { public: true } : {}),
    ...(spec.action ? { action: spec.action } : {}),
    ...(spec.auditAction ? { auditAction: spec.auditAction } : {}),
    ...(spec.signedOnly ? { signedOnly: true } : {}),
    ...(spec.allActions ? { allActions: true } : {}),
    ...(spec.mintsCredential ? { mintsCredential: true } : {}),
    ...(spec.fieldErrorCodes ? { fieldErrorCodes: spec.fieldErrorCodes } : {}),
  };
  const request = {
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(spec.params ? { params: spec.params } : {}),
    ...(spec.query ? { querystring: spec.query } : {}),
    ...(spec.body ? { body: spec.body } : {}),
  };
  const bodyLimit = spec.bodyLimit ? { bodyLimit: spec.bodyLimit } : {};
  const hooks = spec.optionalBody ? { preValidation: absentBodyIsEmpty } : {};
  if (spec.hide) {
    return { config, schema: { hide: true, ...request }, ...bodyLimit, ...hooks } as RouteOptions<Params, Query, Body, Headers>;
  }
  const documentedBody = spec.documentedBody;
  // Only the document sees this body (@fastify/swagger's per-route transform); validation has none.
  const swaggerTransform: SwaggerTransform | undefined = documentedBody
    ? ({ schema, url }) => ({ schema: { ...schema, body: documentedBody }, url })
    : undefined;
  const errors = spec.errors ?? [400, 401, 403, ...(spec.params || spec.notFound ? [404 as const] : [])];
  const notFound = spec.notFound ? { ...errorResponses[404], description: spec.notFound } : errorResponses[404];
  const documented = { 400: errorResponses[400], 401: errorResponses[401], 403: errorResponses[403], 404: notFound };
  const schema = {
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    operationId: spec.operationId,
    // Fresh objects per route, as for tags: a shared one becomes a YAML alias in the document.
    ...(spec.security ? { security: structuredClone(spec.security) } : {}),
    // @fastify/swagger marks every request body required; the document's transform (openapi-responses.ts) reads this.
    ...(spec.optionalBody ? { [OPTIONAL_BODY_MARK]: true } : {}),
    ...request,
    response: {
      ...(spec.ok ? { 200: spec.ok } : spec.responses?.[200] || spec.responses?.[201] ? {} : { 204: NoContent }),
      ...Object.fromEntries(errors.map((status) => [status, documented[status]])),
      ...spec.responses,
    },
  };
  // The absent parts stay absent at run time (fastify compiles what is there); their types are `undefined`, which the
  // type provider reads as "no such part".
  return {
    config: { ...config, ...(swaggerTransform ? { swaggerTransform } : {}) },
    schema,
    ...bodyLimit,
    ...hooks,
  } as RouteOptions<Params, Query, Body, Headers>;
}

/** The answer of an action without a body. */
export const noContent = (reply: FastifyReply) => reply.code(204).send();

/** A request no credential is asked for: a public route's, or an unknown URL's (answered 404 without one). */
export const answeredWithoutCredential = (request: FastifyRequest): boolean => request.routeOptions.config.public === true || request.is404;
