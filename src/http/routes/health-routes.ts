/** Liveness and readiness, public (names and states only) for load balancers and orchestrators; details for operators. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorBody } from '../../schemas/common.ts';
import { errors } from '../../errors.ts';
import { routeOptions, type TypedApp } from '../route-options.ts';

const CheckResults = Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('failed')]), {
  description: 'Each dependency: "ok" or "failed"',
});
const DetailedCheckResults = Type.Record(Type.String(), Type.String(), { description: 'Each dependency with "ok" or what is wrong' });

export async function healthRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/health',
    routeOptions({
      public: true,
      tag: 'operations',
      summary: 'Liveness: the process answers',
      operationId: 'getHealth',
      ok: Type.Object({ status: Type.Literal('ok') }),
      errors: [],
    }),
    async function getHealth() {
      return { status: 'ok' as const };
    },
  );

  /** 200 when every check passes, else 503 in the contract's error body; `detailed` keeps each failure's text. */
  async function readiness(request: FastifyRequest, reply: FastifyReply, detailed: boolean) {
    const checks = await app.services.readiness.check();
    const failed = Object.entries(checks).filter(([, result]) => result !== 'ok');
    if (failed.length === 0) return { status: 'ready' as const, checks };
    // Driver and key-store messages name hosts, paths, token labels: only the log and an admin see them.
    request.log.warn({ checks }, 'not ready');
    const shown = detailed
      ? checks
      : Object.fromEntries(Object.entries(checks).map(([name, result]) => [name, result === 'ok' ? 'ok' : 'failed']));
    const error = errors.unavailable(`not ready: ${failed.map(([name]) => (detailed ? `${name}: ${checks[name]}` : name)).join('; ')}`);
    reply.header('retry-after', '5');
    return reply.code(503).type('application/json;charset=UTF-8').send({ error_code: error.code, error_msg: error.message, checks: shown });
  }

  app.get(
    '/ready',
    routeOptions({
      public: true,
      tag: 'operations',
      summary: 'Readiness: the database is reachable and the key stores are usable',
      description: 'Each check is "ok" or "failed"; what failed is in the log and in GET /v1/readiness.',
      operationId: 'getReady',
      ok: Type.Object({ status: Type.Literal('ready'), checks: CheckResults }),
      errors: [],
      // `checks` is absent from a 503 raised before the checks ran (the server closing): it must still serialise.
      responses: { 503: Type.Intersect([ErrorBody, Type.Object({ checks: Type.Optional(CheckResults) })]) },
    }),
    async function getReady(request, reply) {
      return readiness(request, reply, false);
    },
  );

  app.get(
    '/v1/readiness',
    routeOptions({
      allActions: true,
      tag: 'operations',
      summary: 'Readiness with what is wrong: for operators (every action of the catalogue)',
      operationId: 'getReadinessDetails',
      ok: Type.Object({ status: Type.Literal('ready'), checks: DetailedCheckResults }),
      errors: [401, 403],
      responses: { 503: Type.Intersect([ErrorBody, Type.Object({ checks: Type.Optional(DetailedCheckResults) })]) },
    }),
    async function getReadinessDetails(request, reply) {
      return readiness(request, reply, true);
    },
  );
}
