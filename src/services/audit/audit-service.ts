/**
 * The audit log as a service: a domain's events, newest first, with the filters of `GET /v1/audit-events`; and
 * refused calls, recorded outside any transaction (successful changes call recordAudit in their own).
 */
import type { DatabaseHandle, Db } from '../../db/database.ts';
import type { AuditEvent, Prisma } from '../../db/generated/client.ts';
import type { RequestContext } from '../context.ts';
import { recordAlone, recordFailure, type AuditedChange } from './audit-log.ts';

export interface AuditEventFilter {
  action?: string;
  resourceType?: string;
  resourceId?: string;
  outcome?: 'SUCCESS' | 'FAILURE';
  /** Inclusive bounds on the event time, ms since the epoch. */
  startTime?: number;
  endTime?: number;
  limit: number;
  offset: number;
}

function whereOf(domainId: string, filter: AuditEventFilter): Prisma.AuditEventWhereInput {
  const createdAt = {
    ...(filter.startTime !== undefined && { gte: new Date(filter.startTime) }),
    ...(filter.endTime !== undefined && { lte: new Date(filter.endTime) }),
  };
  return {
    domainId,
    ...(filter.action !== undefined && { action: filter.action }),
    ...(filter.resourceType !== undefined && { resourceType: filter.resourceType }),
    ...(filter.resourceId !== undefined && { resourceId: filter.resourceId }),
    ...(filter.outcome !== undefined && { outcome: filter.outcome }),
    ...(Object.keys(createdAt).length > 0 && { createdAt }),
  };
}

export function createAuditService({ db, sql }: { db: Db; sql: Pick<DatabaseHandle, 'query'> }) {
  return {
    recordFailure: (context: RequestContext, change: AuditedChange & { errorCode: string }) => recordFailure(sql.query, context, change),
    /** A credential handed out (a token, a temporary access key): no row changes, but who got one is on record. */
    record: (context: RequestContext, change: AuditedChange) => recordAlone(sql.query, context, change),

    async list(context: RequestContext, filter: AuditEventFilter): Promise<{ total: number; events: AuditEvent[] }> {
      const where = whereOf(context.domainId, filter);
      const [total, events] = await Promise.all([
        db.auditEvent.count({ where }),
        filter.limit === 0
          ? Promise.resolve([])
          : db.auditEvent.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: filter.limit, skip: filter.offset }),
      ]);
      return { total, events };
    },
  };
}
export type AuditService = ReturnType<typeof createAuditService>;
