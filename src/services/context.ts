/**
 * What every domain operation knows about its caller, and the transaction every state change runs in.
 * Routes build a RequestContext from the authenticated request; jobs build one for the system actor.
 */
export type { Tx } from '../db/tx.ts';

export interface RequestContext {
  /** The caller's tenant: every read and write is scoped to it. */
  domainId: string;
  /** Who acts: an access key id, a token subject, or `system:<job>` for scheduled jobs. */
  actor: string;
  /** Correlates the audit event with the request's logs and X-Request-Id. */
  requestId: string;
}

export function systemContext(job: string, domainId: string): RequestContext {
  return { domainId, actor: `system:${job}`, requestId: `job:${job}` };
}
