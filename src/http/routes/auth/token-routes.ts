/** §10.7: exchange an AK/SK-signed request for a short-lived JWT. */
import { Type } from 'typebox';
import { mintAccessToken } from '../../../auth/access-token.ts';
import { principalOf } from '../../plugins/auth.ts';
import { contextOf } from '../../request-context.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const TokenResponse = Type.Object({
  token: Type.String({ description: 'A JWT for Authorization: Bearer or X-Auth-Token' }),
  expires_at: Type.Integer({ description: 'ms since the epoch' }),
});

export async function tokenRoutes(app: TypedApp): Promise<void> {
  app.post(
    '/v1/auth/tokens',
    routeOptions({
      signedOnly: true,
      mintsCredential: true,
      tag: 'authentication',
      security: [{ sdkHmac: [] }],
      summary: 'Exchange an access key pair for a short-lived token',
      description:
        'The body is `{}` or empty. The token is also sent in the X-Subject-Token header. A temporary access key ' +
        '(X-Security-Token) is refused with a 403: the token would outlive the pair. Audited as `pca:token:create`.',
      operationId: 'createAuthToken',
      errors: [401, 403],
      responses: {
        200: {
          description: 'The token and when it expires',
          headers: { 'X-Subject-Token': Type.String({ description: 'The same token (as Huawei IAM sends it)' }) },
          content: { 'application/json': { schema: TokenResponse } },
        },
      },
    }),
    async function createAuthToken(request, reply) {
      const principal = principalOf(request);
      const { token, expiresAt } = mintAccessToken(app.jwt, principal, app.config.jwt.ttlSeconds);
      await app.services.audit.record(contextOf(request), {
        action: 'pca:token:create',
        resourceType: 'ACCESS_KEY',
        resourceId: principal.subject,
        detail: { expires_at: new Date(expiresAt).toISOString() },
      });
      reply.header('x-subject-token', token);
      return { token, expires_at: expiresAt };
    },
  );
}
