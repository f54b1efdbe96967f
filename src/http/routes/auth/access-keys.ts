/** §10.7 access keys: create (the secret is shown only then), list, delete. The caller must hold every action. */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ACTIONS } from '../../../auth/actions.ts';
import type { AccessKey } from '../../../db/generated/client.ts';
import { MAX_DESCRIPTION_LENGTH } from '../../../services/access-keys/access-key-rules.ts';
import { principalOf } from '../../plugins/auth.ts';
import { contextOf } from '../../request-context.ts';
import { errorResponses, NoContent } from '../../../schemas/common.ts';

const ActionName = Type.String({ enum: [...ACTIONS] });
const credentialFields = {
  access: Type.String({ pattern: '^[A-Z0-9]{20}$' }),
  domain_id: Type.String(),
  status: Type.String({ enum: ['active'] }),
  description: Type.String(),
  actions: Type.Array(ActionName),
  create_time: Type.Integer({ description: 'ms since the epoch' }),
};
const Credential = Type.Object(credentialFields);
const NewCredential = Type.Object({ ...credentialFields, secret: Type.String({ minLength: 40, maxLength: 40 }) });

const CreateBody = Type.Object({
  description: Type.Optional(Type.String({ maxLength: MAX_DESCRIPTION_LENGTH })),
  // Checked against the catalogue and the caller's actions by the service, with a message naming the action.
  actions: Type.Optional(Type.Array(Type.String())),
});

const toCredential = (key: AccessKey) => ({
  access: key.access,
  domain_id: key.domainId,
  status: key.status,
  description: key.description,
  actions: key.actions,
  create_time: key.createdAt.getTime(),
});

const common = { tags: ['access-keys'] };
const config = { allActions: true } as const;

export async function accessKeyRoutes(app: FastifyInstance): Promise<void> {
  app.post(
    '/v1/access-keys',
    {
      config: { ...config, auditAction: 'pca:accessKey:create' },
      schema: {
        ...common,
        summary: 'Create an access key (the secret is returned only here)',
        operationId: 'createAccessKey',
        body: CreateBody,
        response: { 200: Type.Object({ credential: NewCredential }), 400: errorResponses[400], 401: errorResponses[401], 403: errorResponses[403] },
      },
    },
    async (request) => {
      const body = (request.body ?? {}) as { description?: string; actions?: string[] };
      const { key, secret } = await app.services.accessKeys.create(contextOf(request), principalOf(request).actions, body);
      return { credential: { ...toCredential(key), secret } };
    },
  );

  app.get(
    '/v1/access-keys',
    {
      config,
      schema: {
        ...common,
        summary: "List the domain's access keys (no secrets)",
        operationId: 'listAccessKeys',
        response: {
          200: Type.Object({ total: Type.Integer(), credentials: Type.Array(Credential) }),
          401: errorResponses[401],
          403: errorResponses[403],
        },
      },
    },
    async (request) => {
      const keys = await app.services.accessKeys.list(contextOf(request));
      return { total: keys.length, credentials: keys.map(toCredential) };
    },
  );

  app.delete(
    '/v1/access-keys/:access',
    {
      config: { ...config, auditAction: 'pca:accessKey:delete' },
      schema: {
        ...common,
        summary: 'Delete an access key; signatures with it fail from then on',
        operationId: 'deleteAccessKey',
        params: Type.Object({ access: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 204: NoContent, 401: errorResponses[401], 403: errorResponses[403], 404: errorResponses[404] },
      },
    },
    async (request, reply) => {
      await app.services.accessKeys.remove(contextOf(request), (request.params as { access: string }).access);
      return reply.code(204).send();
    },
  );
}
