/** Liveness and readiness, public (names and states only) for load balancers and orchestrators; details for operators. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ErrorBody, errorResponses } from '../../schemas/common.ts';
import { errors } from '../../errors.ts';

const CheckResults = Type.Record(Type.String(), Type.Union([Type.Literal('ok'), Type.Literal('failed')]), {
  description: 'Each dependency: "ok" or "failed"',
});
const DetailedCheckResults = Type.Record(Type.String(), Type.String(), { description: 'Each dependency with "ok" or what is wrong' });

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Liveness: the process answers',
        operationId: 'getHealth',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
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
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the database is reachable and the key stores are usable',
        description: 'Each check is "ok" or "failed"; what failed is in the log and in GET /v1/readiness.',
        operationId: 'getReady',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: CheckResults }),
          503: Type.Intersect([ErrorBody, Type.Object({ checks: CheckResults })]),
        },
      },
    },
    (request, reply) => readiness(request, reply, false),
  );

  app.get(
    '/v1/readiness',
    {
      config: { allActions: true },
      schema: {
        tags: ['operations'],
        summary: 'Readiness with what is wrong: for operators (every action of the catalogue)',
        operationId: 'getReadinessDetails',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: DetailedCheckResults }),
          401: errorResponses[401],
          403: errorResponses[403],
          503: Type.Intersect([ErrorBody, Type.Object({ checks: DetailedCheckResults })]),
        },
      },
    },
    (request, reply) => readiness(request, reply, true),
  );
}
