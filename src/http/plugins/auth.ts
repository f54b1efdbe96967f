/**
 * Authentication and permitted actions, in the contract's order (§2): route (404) -> credential (401) ->
 * action (403) -> syntax (400). Runs before schema validation; routes declare `config.action` or `config.public`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Action, Principal } from '../../auth/actions.ts';
import type { TokenClaims } from '../../auth/jwt.ts';
import { errors } from '../../errors.ts';
import { raiseDeferredBodyError } from './json-body.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credential needed (health, public PKI, docs). */
    public?: boolean;
    /** The action a credential must hold; routes without one need only a valid credential. */
    action?: Action;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  const bearer = authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  return bearer;
}

async function authenticate(app: FastifyInstance, request: FastifyRequest): Promise<Principal> {
  const bearer = bearerToken(request);
  const headerToken = request.headers['x-auth-token'];
  const otherAuthorization = request.headers.authorization !== undefined && bearer === undefined;
  const offered = [bearer, headerToken, otherAuthorization ? 'authorization' : undefined].filter((v) => v !== undefined);
  if (offered.length === 0) throw errors.authenticationFailed('no credential: send a signed request, a Bearer token or X-Auth-Token');
  if (offered.length > 1) throw errors.authenticationFailed('more than one credential in the request');
  if (otherAuthorization) throw errors.authenticationFailed('unsupported Authorization scheme');
  const token = (bearer ?? headerToken) as string;
  let claims: TokenClaims;
  try {
    claims = app.jwt.verify<TokenClaims>(token);
  } catch (error) {
    throw errors.authenticationFailed(`invalid token: ${(error as Error).message}`);
  }
  if (typeof claims.domain_id !== 'string' || claims.domain_id.includes(':') || !Array.isArray(claims.actions)) {
    throw errors.authenticationFailed('invalid token: malformed claims');
  }
  return { domainId: claims.domain_id, subject: claims.sub, actions: new Set(claims.actions), via: 'jwt' };
}

export function registerAuth(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const config = request.routeOptions.config;
    if (!config.public && !request.is404) {
      request.principal = await authenticate(app, request);
      if (config.action && !request.principal.actions.has(config.action)) throw errors.actionNotPermitted(config.action);
    }
    raiseDeferredBodyError(request);
  });
}

/** The authenticated caller of a non-public route. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('principalOf called on a public route');
  return request.principal;
}
