/**
 * RFC 9112 §3.2: an HTTP/1.1 request without a Host header gets 400. Node's own check (`requireHostHeader`) answers
 * it before any of ours (no contract body, no X-Request-Id, no log line), so the server leaves the rule to this hook.
 */
import type { FastifyInstance } from 'fastify';
import { errors } from '../../errors.ts';

/** Server options that switch Node's own check off: this hook answers instead. */
export const HOST_CHECKED_BY_HOOK = { requireHostHeader: false } as const;

export function registerHostRequirement(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.raw.headers.host === undefined) {
      throw errors.invalidParameter('an HTTP/1.1 request must carry a Host header');
    }
  });
}
