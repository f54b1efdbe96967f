/** Tags and resource instances (§4.3; §4.1 rows 18-24 for CAs, 34-40 for certificates). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import type { Action } from '../../../auth/actions.ts';
import { ErrorCode } from '../../../errors.ts';
import type { TaggedResourceType } from '../../../services/tags/tag-service.ts';
import { contextOf } from '../../request-context.ts';
import { UUID_PATTERN } from '../../../schemas/common.ts';
import { routeOptions } from '../ca/ca-routes.ts';
import { CaIdParams, CaObject, CountResponse, DomainTagsResponse, ResourceFilterBody, ResourceTag, TagBody, TagsBody, TagsResponse } from '../ca/ca-schemas.ts';
import { CertificateObject } from '../certificates/certificate-schemas.ts';

interface ResourceKind {
  type: TaggedResourceType;
  prefix: string;
  param: 'ca_id' | 'certificate_id';
  /** SDK operation names differ only in this part: CreateCaTag / CreateCertTag. */
  sdkName: 'Ca' | 'Cert';
  tag: string;
  actions: { read: Action; write: Action; list: Action };
  /** Audit names of the tag writes (the write permission is a catalogue action of another operation). */
  operations: { tag: string; untag: string };
  params: ReturnType<typeof Type.Object>;
  paramError: ErrorCode;
  detail: TSchema;
}

const KINDS: ResourceKind[] = [
  {
    type: 'CA',
    prefix: '/v1/private-certificate-authorities',
    param: 'ca_id',
    sdkName: 'Ca',
    tag: 'certificate-authorities',
    actions: { read: 'pca:ca:get', write: 'pca:ca:create', list: 'pca:ca:list' },
    operations: { tag: 'pca:ca:tag', untag: 'pca:ca:untag' },
    params: CaIdParams,
    paramError: ErrorCode.InvalidCaId,
    detail: CaObject,
  },
  {
    type: 'CERTIFICATE',
    prefix: '/v1/private-certificates',
    param: 'certificate_id',
    sdkName: 'Cert',
    tag: 'certificates',
    actions: { read: 'pca:cert:get', write: 'pca:cert:delete', list: 'pca:cert:list' },
    operations: { tag: 'pca:cert:tag', untag: 'pca:cert:untag' },
    params: Type.Object({ certificate_id: Type.String({ pattern: UUID_PATTERN }) }),
    paramError: ErrorCode.InvalidParameterFormat,
    detail: CertificateObject,
  },
];

function registerKind(app: FastifyInstance, kind: ResourceKind): void {
  const { tags } = app.services;
  const id = (request: FastifyRequest) => (request.params as Record<string, string>)[kind.param];
  const byId = { params: kind.params, fieldErrorCodes: { [kind.param]: kind.paramError } };
  const base = `${kind.prefix}/:${kind.param}/tags`;
  const options = (spec: Parameters<typeof routeOptions>[0]) => routeOptions(spec, kind.tag);
  const write = kind.actions.write;
  const { tag, untag } = kind.operations;

  app.post(base, options({ action: write, auditAction: tag, summary: 'Add or replace one tag', operationId: `create${kind.sdkName}Tag`, body: TagBody, ...byId }), async (request, reply) => {
    await tags.createOne(contextOf(request), kind.type, id(request), (request.body as { tag: unknown }).tag, tag);
    return reply.code(204).send();
  });
  app.post(`${base}/create`, options({ action: write, auditAction: tag, summary: 'Add or replace tags', operationId: `batchCreate${kind.sdkName}Tags`, body: TagsBody, ...byId }), async (request, reply) => {
    await tags.createMany(contextOf(request), kind.type, id(request), (request.body as { tags: unknown }).tags, tag);
    return reply.code(204).send();
  });
  app.delete(`${base}/delete`, options({ action: write, auditAction: untag, summary: 'Remove tags by key', operationId: `batchDelete${kind.sdkName}Tags`, body: TagsBody, ...byId }), async (request, reply) => {
    await tags.deleteMany(contextOf(request), kind.type, id(request), (request.body as { tags: unknown }).tags, untag);
    return reply.code(204).send();
  });
  app.get(base, options({ action: kind.actions.read, summary: 'Tags of one resource', operationId: `list${kind.sdkName}Tags`, ok: TagsResponse, ...byId }), (request) =>
    tags.list(contextOf(request), kind.type, id(request)),
  );
  app.get(`${kind.prefix}/tags`, options({ action: kind.actions.list, summary: 'Every tag key of the domain with its values', operationId: `listDomain${kind.sdkName}Tags`, ok: DomainTagsResponse }), (request) =>
    tags.domainTags(contextOf(request), kind.type),
  );
  const Resources = Type.Object({
    total_count: Type.Integer(),
    resources: Type.Array(Type.Object({ resource_id: Type.String(), resource_name: Type.String(), resource_detail: kind.detail, tags: Type.Array(ResourceTag) })),
  });
  app.post(`${kind.prefix}/resource-instances/filter`, options({ action: kind.actions.list, summary: 'Resources filtered by tags and name', operationId: `list${kind.sdkName}ResourceInstances`, body: ResourceFilterBody, ok: Resources }), (request) =>
    tags.filter(contextOf(request), kind.type, request.body),
  );
  app.post(`${kind.prefix}/resource-instances/count`, options({ action: kind.actions.list, summary: 'Count of resources matching tags and name', operationId: `count${kind.sdkName}ResourceInstances`, body: ResourceFilterBody, ok: CountResponse }), (request) =>
    tags.count(contextOf(request), kind.type, request.body),
  );
}

export async function tagRoutes(app: FastifyInstance): Promise<void> {
  for (const kind of KINDS) registerKind(app, kind);
}
