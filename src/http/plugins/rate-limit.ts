/**
 * Rate limiting per credential (an access key, or a token's subject, within its domain) with @fastify/rate-limit.
 * It runs after authentication, so a throttled caller is known; public routes and unknown routes are not
 * limited. Counters live in the process (one Lambda container, one server), which bounds each instance.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import { errors } from '../../errors.ts';

const credentialKey = (request: FastifyRequest): string =>
  request.principal ? `${request.principal.domainId}/${request.principal.subject}` : request.ip;

export function registerRateLimit(app: FastifyInstance, limit: Config['rateLimit']): void {
  void app.register(fastifyRateLimit, {
    max: limit.max,
    timeWindow: limit.windowMs,
    // Route-level preValidation hooks run after the app-level authentication hook.
    hook: 'preValidation',
    keyGenerator: credentialKey,
    allowList: (request) => request.principal === undefined,
    errorResponseBuilder: (_request, context) => errors.tooManyRequests(Math.max(1, Math.ceil(context.ttl / 1000))),
  });
}
