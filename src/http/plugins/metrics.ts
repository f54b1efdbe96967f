/**
 * Request counts and latencies per route pattern, and `GET /metrics` in Prometheus text format. The endpoint has
 * its own credential (METRICS_TOKEN, sent as a Bearer token) and answers 404 while none is configured: metrics
 * name routes and volumes, so they are never public by default.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { errors } from '../../errors.ts';
import type { Metrics } from '../../metrics/metrics.ts';

/** Compared as digests, so neither the length nor the content of the token leaks through timing. */
const digest = (text: string) => createHash('sha256').update(text).digest();

export function registerMetrics(app: FastifyInstance, metrics: Metrics, token: string | undefined): void {
  app.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label, so scanners cannot grow the label set.
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status_code: reply.statusCode });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    if (token === undefined) throw errors.notFound('/metrics (set METRICS_TOKEN to enable it)');
    const offered = request.headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
    if (offered === undefined || !timingSafeEqual(digest(offered), digest(token))) {
      throw errors.authenticationFailed('GET /metrics needs Authorization: Bearer <METRICS_TOKEN>');
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
