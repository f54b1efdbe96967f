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
  /**
   * Set when the actor signed with a temporary pair (X-Security-Token): that pair's access key. The actor is then the
   * permanent key that issued it, the one accountable, as the temporary key is stored nowhere.
   */
  temporaryAccessKey?: string;
  /** Correlates the audit event with the request's logs and X-Request-Id. */
  requestId: string;
}

/** The context of an authenticated caller: `issuer` is set for a temporary access key (the key that issued it). */
export function callerContext(caller: { domainId: string; subject: string; issuer?: string }, requestId: string): RequestContext {
  return caller.issuer === undefined
    ? { domainId: caller.domainId, actor: caller.subject, requestId }
    : { domainId: caller.domainId, actor: caller.issuer, temporaryAccessKey: caller.subject, requestId };
}

export function systemContext(job: string, domainId: string): RequestContext {
  return { domainId, actor: `system:${job}`, requestId: `job:${job}` };
}
