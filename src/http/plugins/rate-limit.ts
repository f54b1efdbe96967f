/**
 * Rate limiting with @fastify/rate-limit. On authenticated routes per credential (an access key, or a token's subject,
 * within its domain) and per domain (its credentials together: a tenant may hold ACCESS_KEY_QUOTA keys); on the public
 * ones (OCSP, CRL, CA certificate, health, ACME) and unknown URLs, which anyone can call, per client address (an IPv6
 * client by its /64: client-address.ts), all in one public budget. A credential is counted once authenticated, so a
 * throttled caller is known, and before its permission and body are judged (auth.ts), so a request refused for them
 * (403, 415, 400) is counted too; an address as soon as the request's head is in (onRequest), so a request refused
 * for its body (415, 400, 413) is counted too. Counters live in the process (one Lambda container, one server), which
 * bounds each instance.
 */
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import { errors } from '../../errors.ts';
import { clientAddressKey } from '../client-address.ts';

// Addresses and credentials in one key space, kept apart by their prefix. A temporary pair counts as the key that
// issued it: a key can mint pairs at will, each would otherwise bring a budget of its own.
const callerKey = (request: FastifyRequest): string =>
  request.principal
    ? `credential:${request.principal.domainId}/${request.principal.issuer ?? request.principal.subject}`
    : `address:${clientAddressKey(request.ip)}`;

/**
 * Registers the limiter and returns its count, which authentication makes (auth.ts): as soon as the head is in for a
 * request answered without a credential, once it knows the caller for an authenticated one.
 */
export async function registerRateLimit(
  app: FastifyInstance,
  limit: Config['rateLimit'],
): Promise<(request: FastifyRequest, reply: FastifyReply) => Promise<void>> {
  await app.register(fastifyRateLimit, {
    // Not a hook per route: authentication counts each request once, where its caller is known (auth.ts).
    global: false,
    max: (request) => (request.principal ? limit.max : limit.publicMax),
    timeWindow: limit.windowMs,
    keyGenerator: callerKey,
    // Counters kept (least recently used forgotten first): the default 5,000 let a tenant with more credentials, or
    // a crowd of addresses, push other callers' counters out and so reset them.
    cache: 100_000,
    errorResponseBuilder: (_request, context) => errors.tooManyRequests(Math.max(1, Math.ceil(context.ttl / 1000))),
  });
  const count = app.rateLimit();
  // Counted once the credential's own budget let the request through: a key throttled on its own spends no more of
  // its domain's. The plugin keeps 5,000 domains' counters for a limiter made this way; one forgotten starts afresh.
  const countDomain = app.createRateLimit({
    max: limit.domainMax,
    timeWindow: limit.windowMs,
    keyGenerator: (request) => `domain:${request.principal!.domainId}`,
  });
  return async (request, reply) => {
    await count.call(app, request, reply);
    if (!request.principal) return;
    const domain = await countDomain(request);
    if (!domain.isAllowed && domain.isExceeded) {
      // The credential's count has set these to its own budget, which has requests left: name the one that refused.
      reply.header('x-ratelimit-limit', domain.max).header('x-ratelimit-remaining', 0).header('x-ratelimit-reset', domain.ttlInSeconds);
      throw errors.tooManyRequests(Math.max(1, domain.ttlInSeconds));
    }
  };
}
