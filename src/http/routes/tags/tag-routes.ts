/** Tags and resource instances (§4.3; §4.1 rows 18-24 for CAs, 34-40 for certificates). */
import type { FastifyRequest } from 'fastify';
import { Type, type Static, type TSchema } from 'typebox';
import type { Action } from '../../../auth/actions.ts';
import { ErrorCode } from '../../../errors.ts';
import type { TaggedResourceType } from '../../../services/tags/tag-service.ts';
import { contextOf } from '../../request-context.ts';
import { UUID_PATTERN } from '../../../schemas/common.ts';
import { CaIdParams } from '../../../services/ca/ca-input.ts';
import { noContent, routeOptions, type TypedApp } from '../../route-options.ts';
import {
  CaObject,
  CountResponse,
  DomainTagsResponse,
  ResourceFilterBody,
  ResourceTag,
  TagBody,
  TagsBody,
  TagsToDeleteBody,
  TagsResponse,
} from '../ca/ca-schemas.ts';
import { CertificateObject } from '../certificates/certificate-schemas.ts';

const CertificateIdParams = Type.Object({ certificate_id: Type.String({ pattern: UUID_PATTERN }) });

/** The tagged resource a path names. */
const resourceIdOf = (params: Static<ResourceKind['params']>): string => ('ca_id' in params ? params.ca_id : params.certificate_id);

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
  params: typeof CaIdParams | typeof CertificateIdParams;
  paramError: ErrorCode;
  detail: TSchema;
}

const CaKind: ResourceKind = {
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
};

const CertificateKind: ResourceKind = {
  type: 'CERTIFICATE',
  prefix: '/v1/private-certificates',
  param: 'certificate_id',
  sdkName: 'Cert',
  tag: 'certificates',
  actions: { read: 'pca:cert:get', write: 'pca:cert:delete', list: 'pca:cert:list' },
  operations: { tag: 'pca:cert:tag', untag: 'pca:cert:untag' },
  params: CertificateIdParams,
  paramError: ErrorCode.InvalidParameterFormat,
  detail: CertificateObject,
};

function registerKind(app: TypedApp, kind: ResourceKind): void {
  const { tags } = app.services;
  const byId = { params: kind.params, fieldErrorCodes: { [kind.param]: kind.paramError }, tag: kind.tag };
  const base = `${kind.prefix}/:${kind.param}/tags`;
  const write = kind.actions.write;
  const { tag, untag } = kind.operations;

  app.post(
    base,
    routeOptions({
      action: write,
      auditAction: tag,
      summary: 'Add or replace one tag',
      operationId: `create${kind.sdkName}Tag`,
      body: TagBody,
      ...byId,
    }),
    async function createTag(request, reply) {
      await tags.createOne(contextOf(request), kind.type, resourceIdOf(request.params), request.body.tag, tag);
      return noContent(reply);
    },
  );
  app.post(
    `${base}/create`,
    routeOptions({
      action: write,
      auditAction: tag,
      summary: 'Add or replace tags',
      operationId: `batchCreate${kind.sdkName}Tags`,
      body: TagsBody,
      ...byId,
    }),
    async function batchCreateTags(request, reply) {
      await tags.createMany(contextOf(request), kind.type, resourceIdOf(request.params), request.body.tags, tag);
      return noContent(reply);
    },
  );
  app.delete(
    `${base}/delete`,
    routeOptions({
      action: write,
      auditAction: untag,
      summary: 'Remove tags by key',
      operationId: `batchDelete${kind.sdkName}Tags`,
      body: TagsToDeleteBody,
      ...byId,
    }),
    async function batchDeleteTags(request, reply) {
      await tags.deleteMany(contextOf(request), kind.type, resourceIdOf(request.params), request.body.tags, untag);
      return noContent(reply);
    },
  );
  app.get(
    base,
    routeOptions({
      action: kind.actions.read,
      summary: 'Tags of one resource',
      operationId: `list${kind.sdkName}Tags`,
      ok: TagsResponse,
      ...byId,
    }),
    async function listTags(request) {
      return tags.list(contextOf(request), kind.type, resourceIdOf(request.params));
    },
  );
  app.get(
    `${kind.prefix}/tags`,
    routeOptions({
      action: kind.actions.list,
      tag: kind.tag,
      summary: 'Every tag key of the domain with its values',
      operationId: `listDomain${kind.sdkName}Tags`,
      ok: DomainTagsResponse,
    }),
    async function listDomainTags(request) {
      return tags.domainTags(contextOf(request), kind.type);
    },
  );
  const Resources = Type.Object({
    total_count: Type.Integer(),
    resources: Type.Array(
      Type.Object({
        resource_id: Type.String(),
        resource_name: Type.Union([Type.String(), Type.Null()], {
          description: 'the common name; null when there is none (a yearly/monthly CA not configured yet)',
        }),
        resource_detail: kind.detail,
        tags: Type.Array(ResourceTag),
      }),
    ),
  });
  app.post(
    `${kind.prefix}/resource-instances/filter`,
    {
      ...routeOptions({
        action: kind.actions.list,
        tag: kind.tag,
        summary: 'Resources filtered by tags and name',
        operationId: `list${kind.sdkName}ResourceInstances`,
        body: ResourceFilterBody,
        ok: Resources,
      }),
      preValidation: noFilterIsEmptyFilter,
    },
    async function listResourceInstances(request) {
      return tags.filter(contextOf(request), kind.type, request.body);
    },
  );
  app.post(
    `${kind.prefix}/resource-instances/count`,
    {
      ...routeOptions({
        action: kind.actions.list,
        tag: kind.tag,
        summary: 'Count of resources matching tags and name',
        operationId: `count${kind.sdkName}ResourceInstances`,
        body: ResourceFilterBody,
        ok: CountResponse,
      }),
      preValidation: noFilterIsEmptyFilter,
    },
    async function countResourceInstances(request) {
      return tags.count(contextOf(request), kind.type, request.body);
    },
  );
}

/**
 * Every filter field is optional (§4.3: without tags, everything matches), so no body, or `null` (a Go client
 * leaving its Body nil), filters nothing.
 */
async function noFilterIsEmptyFilter(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

export async function tagRoutes(app: TypedApp): Promise<void> {
  registerKind(app, CaKind);
  registerKind(app, CertificateKind);
}
