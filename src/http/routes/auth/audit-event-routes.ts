/**
 * `GET /v1/audit-events`: the caller's domain's audit log, newest first. The log covers every resource and every
 * caller of the domain, so reading it needs every action of the catalogue, like managing access keys (§9 item 3).
 */
import { Type } from 'typebox';
import { AUDIT_RESOURCE_TYPES } from '../../../services/audit/audit-log.ts';
import type { AuditService } from '../../../services/audit/audit-service.ts';
import { contextOf } from '../../request-context.ts';
import { epochMillis, pageOf, PagingQuery, StringEnum } from '../../../schemas/common.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const Outcome = StringEnum(['SUCCESS', 'FAILURE']);

const Query = Type.Object({
  action: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  resource_type: Type.Optional(Type.String({ enum: [...AUDIT_RESOURCE_TYPES] })),
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
  actor: Type.String({
    description:
      'Access key id (for a temporary access key: the key that issued it, the temporary one in detail.temporary_access_key), token subject, or system:<job>',
  }),
  action: Type.String(),
  resource_type: Type.Union([Type.String(), Type.Null()]),
  resource_id: Type.Union([Type.String(), Type.Null()]),
  outcome: Outcome,
  request_id: Type.String({ description: 'The X-Request-Id of the call' }),
  detail: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
  create_time: Type.Integer({ description: 'ms since the epoch' }),
});

/** An event as the service returns it. */
type StoredEvent = Awaited<ReturnType<AuditService['list']>>['events'][number];

const toBody = (event: StoredEvent) => ({
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

export async function auditEventRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/v1/audit-events',
    routeOptions({
      allActions: true,
      tag: 'audit',
      summary: "List the domain's audit events",
      operationId: 'listAuditEvents',
      query: Query,
      ok: Type.Object({ total: Type.Integer(), audit_events: Type.Array(AuditEventBody) }),
    }),
    async function listAuditEvents(request) {
      const { query } = request;
      const filter = {
        action: query.action,
        resourceType: query.resource_type,
        resourceId: query.resource_id,
        outcome: query.outcome,
        startTime: query.start_time,
        endTime: query.end_time,
        ...pageOf(query),
      };
      const { total, events } = await app.services.audit.list(contextOf(request), filter);
      return { total, audit_events: events.map(toBody) };
    },
  );
}
