/** Liveness and readiness, public, for load balancers and orchestrators. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ErrorBody } from '../schemas/common.ts';
import { errors } from '../../errors.ts';

const CheckResults = Type.Record(Type.String(), Type.String(), { description: 'Each dependency with "ok" or what is wrong' });

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

  app.get(
    '/ready',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Readiness: the database is reachable and the key stores are usable',
        operationId: 'getReady',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: CheckResults }),
          503: Type.Intersect([ErrorBody, Type.Object({ checks: CheckResults })]),
        },
      },
    },
    async (request, reply) => {
      const checks = await app.services.readiness.check();
      const failed = Object.entries(checks).filter(([, result]) => result !== 'ok');
      if (failed.length === 0) return { status: 'ready' as const, checks };
      const error = errors.unavailable(`not ready: ${failed.map(([name, result]) => `${name}: ${result}`).join('; ')}`);
      request.log.warn({ checks }, 'not ready');
      reply.header('retry-after', '5');
      return reply.code(503).type('application/json;charset=UTF-8').send({ error_code: error.code, error_msg: error.message, checks });
    },
  );
}
