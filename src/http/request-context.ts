/** The domain layer's view of an HTTP request: who calls, for which tenant, under which request id. */
import type { FastifyRequest } from 'fastify';
import { callerContext, type RequestContext } from '../services/context.ts';
import { principalOf } from './plugins/auth.ts';

export function contextOf(request: FastifyRequest): RequestContext {
  return callerContext(principalOf(request), String(request.id));
}
