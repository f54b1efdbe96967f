/**
 * While the server closes (SIGTERM), a request that still arrives on an open keep-alive connection gets 503 in the
 * contract's format, with Retry-After and X-Request-Id, and its connection closed; requests already running finish.
 * (fastify's built-in answer has neither, and a body of its own shape.)
 */
import type { FastifyInstance } from 'fastify';
import { errors } from '../../errors.ts';

export function registerClosingRefusal(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw errors.unavailable('the server is shutting down: retry on another connection');
  });
}
