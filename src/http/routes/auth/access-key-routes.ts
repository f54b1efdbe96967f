/** §10.7 access keys: create (the secret is shown only then), list, delete. The caller must hold every action. */
import { Type } from 'typebox';
import { ACTIONS } from '../../../auth/actions.ts';
import { CreateAccessKeyBody } from '../../../services/access-keys/access-key-input.ts';
import type { AccessKeyService } from '../../../services/access-keys/access-key-service.ts';
import { principalOf } from '../../plugins/auth.ts';
import { contextOf } from '../../request-context.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';

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

/** A stored key as the service returns it. */
type StoredKey = Awaited<ReturnType<AccessKeyService['list']>>[number];

const toCredential = (key: StoredKey) => ({
  access: key.access,
  domain_id: key.domainId,
  status: key.status,
  description: key.description,
  actions: key.actions,
  create_time: key.createdAt.getTime(),
});

const keys = { allActions: true, tag: 'access-keys' };

export async function accessKeyRoutes(app: TypedApp): Promise<void> {
  app.post(
    '/v1/access-keys',
    routeOptions({
      ...keys,
      mintsCredential: true,
      auditAction: 'pca:accessKey:create',
      summary: 'Create an access key (the secret is returned only here)',
      description: 'Needs every action of the catalogue; a temporary access key (X-Security-Token) is refused with a 403.',
      operationId: 'createAccessKey',
      body: CreateAccessKeyBody,
      ok: Type.Object({ credential: NewCredential }),
    }),
    async function createAccessKey(request) {
      const { key, secret } = await app.services.accessKeys.create(contextOf(request), principalOf(request).actions, request.body ?? {});
      return { credential: { ...toCredential(key), secret } };
    },
  );

  app.get(
    '/v1/access-keys',
    routeOptions({
      ...keys,
      summary: "List the domain's access keys (no secrets)",
      operationId: 'listAccessKeys',
      ok: Type.Object({ total: Type.Integer(), credentials: Type.Array(Credential) }),
      errors: [401, 403],
    }),
    async function listAccessKeys(request) {
      const stored = await app.services.accessKeys.list(contextOf(request));
      return { total: stored.length, credentials: stored.map(toCredential) };
    },
  );

  app.delete(
    '/v1/access-keys/:access',
    routeOptions({
      ...keys,
      auditAction: 'pca:accessKey:delete',
      summary: 'Delete an access key; signatures with it fail from then on',
      operationId: 'deleteAccessKey',
      params: Type.Object({ access: Type.String({ minLength: 1, maxLength: 128 }) }),
      errors: [401, 403, 404],
    }),
    async function deleteAccessKey(request, reply) {
      await app.services.accessKeys.remove(contextOf(request), request.params.access);
      return noContent(reply);
    },
  );
}
