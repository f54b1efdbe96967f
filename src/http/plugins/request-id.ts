/** Every response, errors and 204s included, carries X-Request-Id; a client's own id is echoed when sane. */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** A new id: 32 hex digits. */
export const newRequestId = (): string => randomUUID().replaceAll('-', '');

/** The id of the request a connection is serving, for an answer written on the raw socket (a 408 mid-body). */
const IN_FLIGHT = Symbol('requestInFlight');
type ServingSocket = { [IN_FLIGHT]?: string };

export function requestIdFor(request: IncomingMessage): string {
  const offered = request.headers['x-request-id'];
  const id = typeof offered === 'string' && CLIENT_REQUEST_ID.test(offered) ? offered : newRequestId();
  if (request.socket) (request.socket as ServingSocket)[IN_FLIGHT] = id;
  return id;
}

/** The id of the request in flight on `socket`, if one is. */
export const requestInFlightOn = (socket: object): string | undefined => (socket as ServingSocket)[IN_FLIGHT];

/** Answered: a refusal the parser makes next on this connection belongs to no request yet. */
export function requestAnswered(request: FastifyRequest): void {
  if (request.raw.socket) (request.raw.socket as ServingSocket)[IN_FLIGHT] = undefined;
}

export function registerRequestIdHeader(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', (request, _reply, done) => {
    requestAnswered(request);
    done();
  });
}
