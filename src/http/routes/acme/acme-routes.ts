/**
 * The ACME protocol routes (RFC 8555) of every CA under `/acme/{ca_id or URN}/`. Their wire format is the RFC's,
 * not this API's: bodies are flattened JWS (`application/jose+json`), refusals are problem documents
 * (`application/problem+json`), every answer names the directory as Link rel=index, and every answer for a directory
 * that exists carries a fresh Replay-Nonce.
 * Authentication is the JWS itself, so the routes are public to the REST auth hook; they are left out of the
 * OpenAPI document (the RFC is their contract).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { AcmeProblem } from '../../../services/acme/acme-problems.ts';
import type { AcmeReply, Directory } from '../../../services/acme/acme-requests.ts';
import type { AcmeService } from '../../../services/acme/acme-service.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';
import { noteRejection } from '../../error-handler.ts';

/** `:ca` on every route, `:id` on a resource's; a schema so the handlers get them typed (a path part is a string). */
const AcmeParams = Type.Object({ ca: Type.String(), id: Type.Optional(Type.String()) });
type Params = Static<typeof AcmeParams>;

/**
 * The CA a request names, read where the request's params are not typed (the error handler, every route's headers,
 * directoryFor);
 * for a URL that matched no route (the not-found handler, fastify's errors before routing), its segment after /acme/.
 */
function caOf(request: FastifyRequest): string {
  const params: unknown = request.params;
  if (typeof params === 'object' && params !== null && 'ca' in params && typeof params.ca === 'string') return params.ca;
  const segment = request.url.split(/[/?]/)[2] ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // not decodable: escaped as it is
  }
}

const MAX_JWS_BYTES = 64 * 1024;
const JOSE = 'application/jose+json';

/** Where the ACME routes live: every URL under it is answered in the RFC's format. */
const ACME_PREFIX = '/acme';

/** Whether `url` is under the ACME routes' prefix. */
export const isAcmeUrl = (url: string): boolean => url.startsWith(`${ACME_PREFIX}/`);

/** Requests whose directory `directoryFor` found: only their answers carry a nonce (see acmeHeaders). */
const ofKnownDirectory = new WeakSet<FastifyRequest>();

/** The directory `request` names (a 404 problem if none); from here on its answers, refusals too, carry a nonce. */
async function directoryFor(acme: AcmeService, request: FastifyRequest): Promise<Directory> {
  const directory = await acme.directoryOf(caOf(request));
  ofKnownDirectory.add(request);
  return directory;
}

/**
 * The headers of every ACME answer: no caching, the directory as Link rel=index, and a fresh nonce (RFC 8555 §6.5)
 * once the request's directory is known to exist. A nonce is a stored row (kept an hour): minted on every answer,
 * 404s for unknown CAs and URLs, 405s, 429s and refusals before routing or while reading the body let anyone write
 * rows at will, past the rate limit. None of those needs one: a client gets its next nonce from newNonce.
 */
async function acmeHeaders(acme: AcmeService, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (ofKnownDirectory.has(request)) reply.header('replay-nonce', await acme.newNonce());
  reply.header('cache-control', 'no-store');
  reply.header('link', `<${acme.directoryUrl(caOf(request))}>;rel="index"`);
}

/**
 * `error` answered as a problem document (RFC 7807) with the headers of every ACME answer: by the routes' error and
 * not-found handlers, and by app.ts for the errors fastify raises under /acme/ before routing (a malformed URL).
 */
export async function replyWithAcmeProblem(acme: AcmeService, error: unknown, request: FastifyRequest, reply: FastifyReply) {
  let found = acme.problemOf(error);
  if (!found) {
    const status = (error as { statusCode?: number }).statusCode;
    found =
      typeof status === 'number' && status >= 400 && status < 500
        ? new AcmeProblem('malformed', (error as Error).message, { status })
        : null;
  }
  if (!found) request.log.error({ err: error }, 'ACME request failed');
  const answer = found ?? new AcmeProblem('serverInternal', 'internal error', { status: 500 });
  if (answer.status < 500) noteRejection(request, answer.type, answer.message);
  for (const [name, value] of Object.entries(answer.headers ?? {})) reply.header(name, value);
  try {
    await acmeHeaders(acme, request, reply);
  } catch (nonceError) {
    request.log.error({ err: nonceError }, 'could not issue a nonce');
  }
  return reply.code(answer.status).type('application/problem+json').send(answer.document());
}

/** Under `/acme`, so that a URL there matching no route is answered in the RFC's format too (the not-found handler). */
async function acmeRoutesUnderPrefix(app: TypedApp): Promise<void> {
  const { acme } = app.services;
  const urlOf = (request: FastifyRequest): string => `${app.config.publicBaseUrl}${request.url}`;

  app.addContentTypeParser(JOSE, { parseAs: 'buffer', bodyLimit: MAX_JWS_BYTES }, (_request, raw, done) => {
    try {
      done(null, JSON.parse((raw as Buffer).toString('utf8')));
    } catch {
      done(new AcmeProblem('malformed', 'the body is not JSON'), undefined);
    }
  });

  app.setErrorHandler((error, request, reply) => replyWithAcmeProblem(acme, error, request, reply));

  const send = async (request: FastifyRequest, reply: FastifyReply, answer: AcmeReply) => {
    await acmeHeaders(acme, request, reply);
    if (answer.location) reply.header('location', answer.location);
    if (answer.links?.length) reply.header('link', [reply.getHeader('link') as string, ...answer.links]);
    if (answer.retryAfter !== undefined) reply.header('retry-after', String(answer.retryAfter));
    reply.code(answer.status);
    if (answer.pem !== undefined) return reply.type('application/pem-certificate-chain').send(answer.pem);
    return answer.body === undefined ? reply.send() : reply.type('application/json').send(answer.body);
  };

  // RFC 8555 clients use only the URLs the server gave; any other under /acme/ is a malformed request, as a problem.
  // Counted per address like every unknown URL (rate-limit.ts): a flood of them is answered 429.
  app.setNotFoundHandler(async function acmeNotFound(request) {
    throw new AcmeProblem('malformed', `no ACME resource at ${request.method} ${request.url.split('?')[0]}`, { status: 404 });
  });

  const options = routeOptions({ public: true, hide: true, params: AcmeParams });
  const post = (path: string, handle: (request: FastifyRequest, directory: Directory, params: Params) => Promise<AcmeReply>) => {
    app.post(`/:ca/${path}`, options, async function acmePost(request, reply) {
      const directory = await directoryFor(acme, request);
      // §6.2: a body the app's other parsers accepted (application/json) is still refused.
      if (request.headers['content-type']?.split(';')[0].trim().toLowerCase() !== JOSE) {
        throw new AcmeProblem('malformed', `the Content-Type must be ${JOSE}`, { status: 415 });
      }
      return send(request, reply, await handle(request, directory, request.params));
    });
    // RFC 8555 §6.3: resources other than the directory and newNonce are read by POST-as-GET only.
    app.get(`/:ca/${path}`, options, async function acmePostOnly() {
      throw new AcmeProblem('malformed', 'this resource answers POST only (read it by POST-as-GET)', {
        status: 405,
        headers: { allow: 'POST' },
      });
    });
  };

  app.get('/:ca/directory', options, async function acmeDirectory(request, reply) {
    const directory = await acme.directoryOf(request.params.ca);
    reply.header('cache-control', 'no-store');
    return reply.type('application/json').send(acme.directoryObject(directory));
  });
  for (const method of ['HEAD', 'GET'] as const) {
    app.route({
      method,
      url: '/:ca/new-nonce',
      ...options,
      handler: async function acmeNewNonce(request, reply) {
        await directoryFor(acme, request);
        await acmeHeaders(acme, request, reply);
        return reply.code(method === 'HEAD' ? 200 : 204).send();
      },
    });
  }
  post('new-account', (request, directory) => acme.newAccount(directory, urlOf(request), request.body, String(request.id)));
  post('account/:id', (request, directory, { id = '' }) =>
    acme.updateAccount(directory, urlOf(request), id, request.body, String(request.id)),
  );
  post('key-change', (request, directory) => acme.keyChange(directory, urlOf(request), request.body, String(request.id)));
  post('orders/:id', (request, directory, { id = '' }) => acme.listOrders(directory, urlOf(request), id, request.body));
  post('new-order', (request, directory) => acme.newOrder(directory, urlOf(request), request.body, String(request.id)));
  post('order/:id', (request, directory, { id = '' }) => acme.getOrder(directory, urlOf(request), id, request.body));
  post('order/:id/finalize', (request, directory, { id = '' }) =>
    acme.finalize(directory, urlOf(request), id, request.body, String(request.id)),
  );
  post('authz/:id', (request, directory, { id = '' }) => acme.getAuthorization(directory, urlOf(request), id, request.body));
  post('chall/:id', (request, directory, { id = '' }) => acme.respondToChallenge(directory, urlOf(request), id, request.body));
  post('cert/:id', (request, directory, { id = '' }) => acme.certificateChain(directory, urlOf(request), id, false, request.body));
  post('cert/:id/alternate', (request, directory, { id = '' }) => acme.certificateChain(directory, urlOf(request), id, true, request.body));
  post('revoke-cert', (request, directory) => acme.revokeCertificate(directory, urlOf(request), request.body, String(request.id)));
}

export async function acmeRoutes(app: TypedApp): Promise<void> {
  await app.register(acmeRoutesUnderPrefix, { prefix: ACME_PREFIX });
}
