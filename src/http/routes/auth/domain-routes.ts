/** §3.5: IAM discovery for SDK credentials without a domain id (domains) or without a project id (projects). */
import { Type } from 'typebox';
import { projectIdOf } from '../../../services/access-keys/access-key-rules.ts';
import { principalOf } from '../../plugins/auth.ts';
import { routeOptions, type TypedApp } from '../../route-options.ts';

const DomainList = Type.Object({
  domains: Type.Array(Type.Object({ id: Type.String(), name: Type.String() }), { minItems: 1, maxItems: 1 }),
});

const Project = Type.Object({
  id: Type.String(),
  name: Type.String({ description: 'The region' }),
  domain_id: Type.String(),
  parent_id: Type.String(),
  enabled: Type.Boolean(),
  is_domain: Type.Boolean(),
  description: Type.String(),
});

const ProjectList = Type.Object({
  projects: Type.Array(Project, { maxItems: 1 }),
  links: Type.Object({ self: Type.String(), previous: Type.Null(), next: Type.Null() }),
});

/** Keystone's filters; the SDK sends `name` (its region). Unknown parameters are ignored, as Keystone does. */
const ProjectQuery = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 64 })),
  domain_id: Type.Optional(Type.String({ maxLength: 64 })),
  enabled: Type.Optional(Type.Boolean()),
  is_domain: Type.Optional(Type.Boolean()),
  page: Type.Optional(Type.Integer({ minimum: 1 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000 })),
});

/** The IAM lookups: signed by an access key only, documented under its scheme alone. */
const iam = { signedOnly: true, tag: 'authentication', security: [{ sdkHmac: [] }] };

export async function domainRoutes(app: TypedApp): Promise<void> {
  app.get(
    '/v3/auth/domains',
    routeOptions({
      ...iam,
      summary: "The signing access key's domain (IAM domain lookup of the Huawei SDKs)",
      operationId: 'keystoneListAuthDomains',
      ok: DomainList,
      errors: [401],
    }),
    async function listAuthDomains(request) {
      const { domainId } = principalOf(request);
      return { domains: [{ id: domainId, name: await app.services.accessKeys.domainName(domainId) }] };
    },
  );

  app.get(
    '/v3/projects',
    routeOptions({
      ...iam,
      summary: "The signing access key's project in this region (IAM project lookup of the Huawei SDKs)",
      description:
        'A domain has one project per region, and this service one region: the list holds that project when the ' +
        'filters match it, else nothing. Project-level SDK credentials then send its id as X-Project-Id.',
      operationId: 'keystoneListProjects',
      query: ProjectQuery,
      ok: ProjectList,
      errors: [400, 401],
    }),
    async function listProjects(request) {
      const { domainId } = principalOf(request);
      const { query } = request;
      const { region } = app.config;
      const matches =
        (query.name === undefined || query.name === region) &&
        (query.domain_id === undefined || query.domain_id === domainId) &&
        query.enabled !== false &&
        query.is_domain !== true &&
        (query.page ?? 1) === 1;
      const project = {
        id: projectIdOf(domainId, region),
        name: region,
        domain_id: domainId,
        parent_id: domainId,
        enabled: true,
        is_domain: false,
        description: '',
      };
      return { projects: matches ? [project] : [], links: { self: request.url, previous: null, next: null } };
    },
  );
}
