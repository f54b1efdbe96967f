/**
 * `GET /v1/audit-events`: the caller's domain's audit log, newest first. The log covers every resource and every
 * caller of the domain, so reading it needs every action of the catalogue, like managing access keys (§9 item 3).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AuditEvent } from '../../../db/generated/client.ts';
import type { AuditEventFilter } from '../../../services/audit/audit-service.ts';
import { contextOf } from '../../request-context.ts';
import { epochMillis, errorResponses, PagingQuery } from '../../../schemas/common.ts';

const Outcome = Type.String({ enum: ['SUCCESS', 'FAILURE'] });

const Query = Type.Object({
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  resource_type: Type.Optional(Type.String({ enum: ['CA', 'CERTIFICATE', 'ACCESS_KEY', 'ORDER'] })),
  resource_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  outcome: Type.Optional(Outcome),
  start_time: Type.Optional(epochMillis('ms since the epoch, inclusive')),
  end_time: Type.Optional(epochMillis('ms since the epoch, inclusive')),
  // Optional for callers: the validator fills the defaults in.
  ...PagingQuery,
});

const AuditEventBody = Type.Object({
  id: Type.String(),
  domain_id: Type.String(),
  actor: Type.String({ description: 'Access key id, token subject, or system:<job>' }),
  action: Type.String(),
  resource_type: Type.Union([Type.String(), Type.Null()]),
  resource_id: Type.Union([Type.String(), Type.Null()]),
  outcome: Outcome,
  request_id: Type.String({ description: 'The X-Request-Id of the call' }),
  detail: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  create_time: Type.Integer({ description: 'ms since the epoch' }),
});

const toBody = (event: AuditEvent) => ({
  id: event.id,
  domain_id: event.domainId,
  actor: event.actor,
  action: event.action,
  resource_type: event.resourceType,
  resource_id: event.resourceId,
  outcome: event.outcome,
  request_id: event.requestId,
  detail: (event.detail ?? null) as Record<string, unknown> | null,
  create_time: event.createdAt.getTime(),
});

export async function auditEventRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/v1/audit-events',
    {
      config: { allActions: true },
      schema: {
        tags: ['audit'],
        summary: "List the domain's audit events",
        operationId: 'listAuditEvents',
        querystring: Query,
        response: {
          200: Type.Object({ total: Type.Integer(), audit_events: Type.Array(AuditEventBody) }),
          400: errorResponses[400],
          401: errorResponses[401],
          403: errorResponses[403],
        },
      },
    },
    async (request) => {
      const query = request.query as Record<string, string | number | undefined>;
      const filter: AuditEventFilter = {
        action: query.action as string | undefined,
        resourceType: query.resource_type as string | undefined,
        resourceId: query.resource_id as string | undefined,
        outcome: query.outcome as AuditEventFilter['outcome'],
        startTime: query.start_time as number | undefined,
        endTime: query.end_time as number | undefined,
        limit: query.limit as number,
        offset: query.offset as number,
      };
      const { total, events } = await app.services.audit.list(contextOf(request), filter);
      return { total, audit_events: events.map(toBody) };
    },
  );
}
