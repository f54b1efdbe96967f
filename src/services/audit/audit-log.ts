/**
 * Audit events: one per state-changing call, written in the same transaction as the change (so a change
 * never commits without its event and a rolled-back change leaves none). Refused calls are recorded by
 * `recordFailure` outside any transaction.
 */
import { randomUUID } from 'node:crypto';
import { insertRows, type BulkRows } from '../../db/bulk-insert.ts';
import type { Executor } from '../../db/tx.ts';
import type { RequestContext, Tx } from '../context.ts';

/** What an event may name as its resource; the audit list filters by exactly these. */
export const AUDIT_RESOURCE_TYPES = ['CA', 'CERTIFICATE', 'ACCESS_KEY', 'ORDER', 'ACME_EAB_KEY', 'ACME_ACCOUNT'] as const;

export interface AuditedChange {
  /** The contract action name the call needed, e.g. `pca:ca:create`, or a finer verb such as `pca:ca:disable`. */
  action: string;
  resourceType?: (typeof AUDIT_RESOURCE_TYPES)[number];
  resourceId?: string;
  detail?: Record<string, unknown>;
}

function auditEvent(context: RequestContext, change: AuditedChange, outcome: 'SUCCESS' | 'FAILURE', ownDetail?: Record<string, unknown>) {
  const detail = context.temporaryAccessKey === undefined ? ownDetail : { ...ownDetail, temporary_access_key: context.temporaryAccessKey };
  return {
    id: randomUUID(),
    domainId: context.domainId,
    actor: context.actor,
    action: change.action,
    resourceType: change.resourceType ?? null,
    resourceId: change.resourceId ?? null,
    outcome,
    requestId: context.requestId,
    detail: detail as never,
  };
}

export async function recordAudit(tx: Tx, context: RequestContext, change: AuditedChange): Promise<void> {
  await tx.auditEvent.create({ data: auditEvent(context, change, 'SUCCESS', change.detail) });
}

/** One event written on its own, outside any transaction: for what changes no row (a credential handed out). */
export async function recordAlone(sql: Executor, context: RequestContext, change: AuditedChange): Promise<void> {
  await insertRows(sql, auditRows([{ context, change }]));
}

/** Several changes' events (a group-committed batch), each with its own request context, for `insertRows`. */
export function auditRows(changes: { context: RequestContext; change: AuditedChange }[]): BulkRows {
  return ['audit_events', changes.map(({ context, change }) => auditEvent(context, change, 'SUCCESS', change.detail))];
}

/**
 * A refused call's event, by one prepared statement rather than through Prisma's query compiler: refusals are what a
 * caller hammering the service at its quota or with bad requests makes, so each must cost little.
 */
export async function recordFailure(sql: Executor, context: RequestContext, change: AuditedChange & { errorCode: string }): Promise<void> {
  await insertRows(sql, [
    'audit_events',
    [auditEvent(context, change, 'FAILURE', { error_code: change.errorCode, ...(change.detail ?? {}) })],
  ]);
}
