/** §10.7: exchange an AK/SK-signed request for a short-lived JWT. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { mintAccessToken } from '../../../auth/access-token.ts';
import { principalOf } from '../../plugins/auth.ts';
import { errorResponses } from '../../../schemas/common.ts';

const TokenResponse = Type.Object({
  token: Type.String({ description: 'A JWT for Authorization: Bearer or X-Auth-Token' }),
  expires_at: Type.Integer({ description: 'ms since the epoch' }),
});

export async function tokenRoutes(app: FastifyInstance): Promise<void> {
  app.post(
    '/v1/auth/tokens',
    {
      config: { signedOnly: true },
      schema: {
        tags: ['authentication'],
        summary: 'Exchange an access key pair for a short-lived token',
        operationId: 'createAuthToken',
        security: [{ sdkHmac: [] }],
        description: 'The body is `{}` or empty. The token is also sent in the X-Subject-Token header.',
        response: {
          200: TokenResponse,
          401: errorResponses[401],
        },
      },
    },
    async (request, reply) => {
      const { token, expiresAt } = mintAccessToken(app.jwt, principalOf(request), app.config.jwt.ttlSeconds);
      reply.header('x-subject-token', token);
      return { token, expires_at: expiresAt };
    },
  );
}
