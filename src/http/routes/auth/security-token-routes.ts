/** Huawei IAM's temporary access keys (CreateTemporaryAccessKeyByToken): a pair used with X-Security-Token. */
import { Type } from 'typebox';
import { durationSecondsOf, MAX_DURATION_SECONDS, MIN_DURATION_SECONDS } from '../../../services/access-keys/temporary-credentials.ts';
import { contextOf } from '../../request-context.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const DurationSeconds = Type.Integer({ minimum: MIN_DURATION_SECONDS, maximum: MAX_DURATION_SECONDS, default: MIN_DURATION_SECONDS });

/** IAM's body; every part optional here, since the signature already names the key. */
const SecurityTokenRequest = Type.Object({
  auth: Type.Optional(
    Type.Object({
      identity: Type.Optional(
        Type.Object({
          methods: Type.Optional(Type.Array(Type.String({ enum: ['token'] }), { minItems: 1, maxItems: 1 })),
          token: Type.Optional(Type.Object({ duration_seconds: Type.Optional(DurationSeconds) })),
        }),
      ),
    }),
  ),
});

const SecurityTokenResponse = Type.Object({
  credential: Type.Object({
    access: Type.String({ description: 'Temporary access key id' }),
    secret: Type.String({ description: 'Its secret; shown only here' }),
    securitytoken: Type.String({ description: 'Send as X-Security-Token with every request signed by this pair' }),
    expires_at: Type.String({ format: 'date-time', description: 'UTC, e.g. 2024-05-06T07:23:09.000000Z' }),
  }),
});

/** IAM writes microseconds. */
const iamTime = (date: Date): string => date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export async function securityTokenRoutes(app: TypedApp): Promise<void> {
  app.post(
    '/v3.0/OS-CREDENTIAL/securitytokens',
    routeOptions({
      signedOnly: true,
      mintsCredential: true,
      tag: 'authentication',
      security: [{ sdkHmac: [] }],
      summary: 'Issue a temporary access key with a security token',
      description:
        'Signed by a permanent access key. The pair signs requests like that key (with X-Security-Token), holds ' +
        "the key's actions and stops working at expires_at or when the key is deleted. A temporary pair cannot " +
        'issue another. Audited as `pca:accessKey:createTemporary`; what the pair then does is audited with the ' +
        'issuing key as the actor and the temporary key in `detail.temporary_access_key`.',
      operationId: 'createTemporaryAccessKeyByToken',
      body: SecurityTokenRequest,
      responses: { 201: SecurityTokenResponse },
      errors: [400, 401, 403],
    }),
    async function createTemporaryAccessKey(request, reply) {
      const duration = durationSecondsOf(request.body?.auth?.identity?.token?.duration_seconds);
      const issued = await app.services.accessKeys.issueTemporary(contextOf(request), duration);
      return reply.code(201).send({
        credential: {
          access: issued.access,
          secret: issued.secret,
          securitytoken: issued.securityToken,
          expires_at: iamTime(issued.expiresAt),
        },
      });
    },
  );
}
