/**
 * Authentication and permitted actions, in the contract's order (§2): route (404) -> credential (401) ->
 * action (403) -> syntax (400). Runs before schema validation; routes declare `config.action` or `config.public`.
 *
 * Credentials (§3, §10.7): exactly one of an AK/SK-signed request (`Authorization: SDK-HMAC-SHA256 ...` or another
 * algorithm of signature-algorithms.ts; a temporary pair adds X-Security-Token), a Bearer JWT, or an X-Auth-Token JWT. Refused mutations of a known caller are written to the audit log as FAILURE events.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Action, Principal } from '../../auth/actions.ts';
import { headersAsSent, type SignatureUse, type SignedRequest } from '../../auth/sdk-hmac.ts';
import { isSignatureScheme } from '../../auth/signature-algorithms.ts';
import { createTokenPrincipals, type VerifiedClaims } from '../../auth/token-principals.ts';
import { AppError, ErrorCode, errors } from '../../errors.ts';
import { holdsEveryAction, projectIdOf } from '../../services/access-keys/access-key-rules.ts';
import type { SigningKey } from '../../services/access-keys/access-key-service.ts';
import type { AuditedChange } from '../../services/audit/audit-log.ts';
import { callerContext } from '../../services/context.ts';
import { parsePublicCaReference } from '../../services/urn.ts';
import { raiseDeferredInputError } from './json-body.ts';
import { type AuthAttempt, createAuthFailures } from './auth-failures.ts';
import { registerRateLimit } from './rate-limit.ts';
import { clientAddressKey } from '../client-address.ts';
import { answeredWithoutCredential } from '../route-options.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credential needed (health, public PKI, docs). */
    public?: boolean;
    /** The action a credential must hold; routes without one need only a valid credential. */
    action?: Action;
    /** Only an AK/SK-signed request is accepted (token exchange, domain lookup). */
    signedOnly?: boolean;
    /** The credential must hold every action of the catalogue (§9 item 3: access keys, audit log). */
    allActions?: boolean;
    /** The route creates a credential (access key, token, security token): a temporary access key may not call it. */
    mintsCredential?: boolean;
    /** The action name of this route's audit events when it differs from `action` (or there is none). */
    auditAction?: string;
  }
  interface FastifyRequest {
    principal?: Principal;
    /** Set for an AK/SK-signed request once verified: what the replay cache records. */
    signatureUse?: SignatureUse;
    /**
     * Set for an AK/SK-signed request whose head and key passed before its body was read: its signature is due. It
     * holds the key's secret, so it is cleared once the signature is checked.
     */
    signingKey?: SigningKey;
    /** Set for a request that needs a credential: its place among its address's credentials being judged. */
    authAttempt?: AuthAttempt;
  }
}

/** GETs (and HEAD, OPTIONS) change nothing: repeating one is harmless and is not recorded. */
const MUTATING_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

type OfferedCredential = { kind: 'signature' } | { kind: 'token'; token: string };

/** The one credential of the request; none, several or an unknown scheme is a 401. */
function offeredCredential(request: FastifyRequest): OfferedCredential {
  const { authorization } = request.headers;
  const headerToken = request.headers['x-auth-token'];
  if (authorization === undefined && headerToken === undefined) {
    throw errors.authenticationFailed('no credential: send a signed request, a Bearer token or X-Auth-Token');
  }
  if (authorization !== undefined && headerToken !== undefined)
    throw errors.authenticationFailed('more than one credential in the request');
  if (headerToken !== undefined) return { kind: 'token', token: headerToken as string };
  const bearer = authorization!.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (bearer !== undefined) return { kind: 'token', token: bearer };
  if (isSignatureScheme(authorization!)) return { kind: 'signature' };
  throw errors.authenticationFailed('unsupported Authorization scheme');
}

const announcesBody = (request: FastifyRequest): boolean =>
  Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined;

/**
 * The raw body bytes. Fastify parses no body on GET and HEAD, yet the Node SDK sends (and signs) `{}` with its
 * GETs, e.g. the IAM domain lookup: such a body is read here, within the body limit.
 */
async function receivedBody(app: FastifyInstance, request: FastifyRequest): Promise<Uint8Array> {
  if (request.rawBody) return request.rawBody;
  if ((request.method !== 'GET' && request.method !== 'HEAD') || !announcesBody(request)) return new Uint8Array();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > app.config.bodyLimitBytes) throw new AppError(413, ErrorCode.InvalidParameter, 'request body is too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function verifySignature(app: FastifyInstance, request: FastifyRequest, signingKey: SigningKey): Promise<Principal> {
  // The signature covers the raw target and the raw body bytes.
  const received: SignedRequest = {
    method: request.method,
    url: request.url,
    headers: headersAsSent(request.raw.rawHeaders),
    body: await receivedBody(app, request),
  };
  // Behind a proxy that rewrote Host, the client signed the host it addressed (§3.2 item 3); fastify takes
  // X-Forwarded-Host only from a trusted proxy (TRUST_PROXY).
  const hostOverride = request.headers['x-forwarded-host'] === undefined ? undefined : request.host;
  // A body takes time to arrive, and the key may be deleted meanwhile: then it is looked up again, before anything is
  // judged or recorded in its name. Without a body, nothing came after the head: the key found for it is current.
  const key = await app.services.accessKeys.verifyRequest(received, hostOverride, announcesBody(request) ? undefined : signingKey);
  request.signatureUse = key.use;
  return {
    domainId: key.domainId,
    subject: key.access,
    actions: new Set(key.actions),
    via: 'aksk',
    ...(key.issuer && { issuer: key.issuer }),
  };
}

/** The request's claims about its caller (X-Domain-Id, X-Project-Id) must be the credential's. */
function requireClaimsOf(app: FastifyInstance, request: FastifyRequest, principal: Principal): void {
  const claimedDomain = request.headers['x-domain-id'];
  if (claimedDomain !== undefined && claimedDomain !== principal.domainId) {
    throw errors.authenticationFailed("X-Domain-Id does not match the credential's domain");
  }
  // Project-level SDK credentials (BasicCredentials) send the project they looked up (GET /v3/projects).
  const claimedProject = request.headers['x-project-id'];
  if (claimedProject !== undefined && claimedProject !== projectIdOf(principal.domainId, app.config.region)) {
    throw errors.authenticationFailed("X-Project-Id is not the credential domain's project of this region");
  }
}

/** A route that takes only AK/SK-signed requests refuses a token as a credential (401), not as a permission. */
function requireCredentialKind(request: FastifyRequest, principal: Principal): void {
  if (request.routeOptions.config.signedOnly && principal.via !== 'aksk')
    throw errors.authenticationFailed('this endpoint needs an AK/SK-signed request; tokens are not accepted');
}

function authorize(request: FastifyRequest, principal: Principal): void {
  const config = request.routeOptions.config;
  if (config.allActions && !holdsEveryAction(principal.actions)) throw errors.actionNotPermitted('pca:* (every action of the catalogue)');
  if (config.action && !principal.actions.has(config.action)) throw errors.actionNotPermitted(config.action);
  // A temporary pair ends at its expiry or with its issuing key; a credential it minted would outlive both.
  if (config.mintsCredential && principal.issuer !== undefined) {
    throw errors.temporaryKeyRefused('a temporary access key cannot create access keys, tokens, security tokens or ACME EAB keys');
  }
}

const RESOURCE_PARAMS: [param: string, type: NonNullable<AuditedChange['resourceType']>][] = [
  // An EAB key's routes name its CA too: the key is the resource, as their successes record it.
  ['kid', 'ACME_EAB_KEY'],
  ['ca_id', 'CA'],
  ['certificate_id', 'CERTIFICATE'],
  ['access', 'ACCESS_KEY'],
];

function resourceOf(request: FastifyRequest, region: string): Pick<AuditedChange, 'resourceType' | 'resourceId'> {
  // Any route's path parameters (untyped here): the first one naming a resource.
  const params = new Map(typeof request.params === 'object' && request.params !== null ? Object.entries(request.params) : []);
  const match = RESOURCE_PARAMS.find(([param]) => typeof params.get(param) === 'string');
  if (!match) return {};
  const value = String(params.get(match[0]));
  // A CA named by its URN (§10.1) is recorded by its id, as its successes are, so one filter finds both.
  const id = match[1] === 'CA' ? (parsePublicCaReference(value, region)?.id ?? value) : value;
  return { resourceType: match[1], resourceId: auditableId(id) };
}

/** A path parameter as the audit log can hold it: no NUL (a text column refuses it), at most 256 characters. */
const auditableId = (id: string): string => id.replaceAll('\0', '\uFFFD').slice(0, 256);

function errorCodeOf(payload: unknown): string {
  try {
    return String((JSON.parse(String(payload)) as { error_code?: unknown }).error_code ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/**
 * A refused mutation of a known caller (403, and every other 4xx but throttling), or a refused request for a credential
 * (IAM's security-token path included), is audited as a FAILURE before the
 * response leaves, so it is visible once the client has its answer. 401s have no known domain; 429s would let a
 * flood write to the database; 5xx are rolled-back failures the log already records.
 */
function isAuditedRefusal(request: FastifyRequest, reply: FastifyReply): boolean {
  const status = reply.statusCode;
  return (
    request.principal !== undefined &&
    request.method !== 'GET' &&
    request.method !== 'HEAD' &&
    ((request.routeOptions.url ?? '').startsWith('/v1/') || request.routeOptions.config.mintsCredential === true) &&
    status >= 400 &&
    status < 500 &&
    status !== 401 &&
    status !== 429
  );
}

async function auditRefusal(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<void> {
  const config = request.routeOptions.config;
  const principal = request.principal!;
  try {
    await app.services.audit.recordFailure(callerContext(principal, String(request.id)), {
      action: config.auditAction ?? config.action ?? `${request.method} ${request.routeOptions.url}`,
      ...resourceOf(request, app.config.region),
      errorCode: errorCodeOf(payload),
      // The operation attempted is the action; the permission the route checks is recorded beside it.
      detail: { status: reply.statusCode, permission: config.action ?? null },
    });
  } catch (error) {
    request.log.error({ err: error }, 'could not record the refused call in the audit log');
  }
}

export async function registerAuth(app: FastifyInstance): Promise<void> {
  const principalOfToken = createTokenPrincipals({ verify: (token) => app.jwt.verify<VerifiedClaims>(token) });
  const { authFailureMax: max, windowMs } = app.config.rateLimit;
  const authFailures = createAuthFailures({ max, windowMs });
  const countRequest = await registerRateLimit(app, app.config.rateLimit);
  // Counted before the permission is judged: a refused request (403, and 415/400 after it, each refused mutation
  // audited) spends the caller's budget as an answered one does.
  const accept = async (request: FastifyRequest, reply: FastifyReply, principal: Principal) => {
    requireCredentialKind(request, principal);
    requireClaimsOf(app, request, principal);
    // A token lives on after its key is deleted (until its exp); a credential it minted would live on for good.
    if (request.routeOptions.config.mintsCredential && principal.exchangedFor !== undefined) {
      await app.services.accessKeys.requireExisting(principal.domainId, principal.exchangedFor);
    }
    request.principal = principal;
    request.authAttempt!.accepted();
    await countRequest(request, reply);
    authorize(request, principal);
  };
  // What can be judged before the body is read is judged first: a caller without a valid credential must not make the
  // server receive and parse up to BODY_LIMIT_BYTES of JSON. A token is checked in full here; a signed request (whose
  // signature covers its body) for its head and the key it names, and in full in preValidation, where the key is looked
  // up again if a body came: one deleted while the body was on its way signs nothing.
  app.addHook('onRequest', async (request, reply) => {
    // Counted by address as soon as the head is in, so a request refused for its body (415, 400, 413) is counted too.
    if (answeredWithoutCredential(request)) return countRequest(request, reply);
    const attempt = authFailures.attempt(clientAddressKey(request.ip));
    request.authAttempt = attempt;
    // 'close' comes once a response is sent and when the connection goes first, so no attempt is left undecided. A
    // signed request refused for its body's size before its signature was judged counts as refused too: it reached
    // neither budget, and a known access key would otherwise make the server receive bodies without limit.
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      attempt.answered(status === 401 || (status === 413 && request.signingKey !== undefined));
    });
    const credential = offeredCredential(request);
    if (credential.kind === 'token') await accept(request, reply, principalOfToken(credential.token));
    else {
      request.signingKey = await app.services.accessKeys.signingKeyOf(headersAsSent(request.raw.rawHeaders));
    }
  });
  app.addHook('preValidation', async (request, reply) => {
    const { signingKey } = request;
    if (signingKey) {
      // Judged (and so counted) once the signature is: a GET's body is read in verifySignature, and may be refused 413.
      const principal = await verifySignature(app, request, signingKey);
      request.signingKey = undefined;
      await accept(request, reply, principal);
    }
    raiseDeferredInputError(request);
  });
  // A signed mutation runs once (signature-replay.ts). The claim comes after authentication, permission, rate limit
  // and schema validation, just before the handler: a request refused by any of those spends no signature, so a
  // forged copy of a captured signature (other signed bytes: it fails verification) cannot burn the legitimate
  // request's, and a throttled or malformed request can be judged again. Only a request about to run records it.
  app.addHook('preHandler', async (request) => {
    if (request.signatureUse && MUTATING_METHODS.has(request.method)) await app.services.accessKeys.claimSignature(request.signatureUse);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (isAuditedRefusal(request, reply)) await auditRefusal(app, request, reply, payload);
    return payload;
  });
}

/** The authenticated caller of a non-public route. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principalOf called on a public route');
  return request.principal;
}
