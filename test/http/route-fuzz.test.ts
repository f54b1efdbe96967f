/**
 * Robustness of every route but the two issuance POSTs (those have test/certificates/fuzz.test.ts): each operation
 * of the committed OpenAPI document gets hundreds of requests built from its parameters and request body schema
 * over seeded resources, then mutated (junk path segments, query values, JSON values, raw broken JSON text, OCSP
 * bytes). Every answer is a 2xx or a 4xx, and every refusal carries the contract's error body. Seeded PRNG, so a
 * failure replays; each failure is reported with its request.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { parse } from 'yaml';
import { ACTIONS } from '../../src/auth/actions.ts';
import { caUrn } from '../../src/services/urn.ts';
import { toPem } from '../../src/x509/pem.ts';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';
import { openssl, scratch } from '../x509/support.ts';
import { fuzzCases, fuzzer } from '../helpers/fuzz.ts';
import { MAX_JSON_DEPTH } from '../../src/http/plugins/json-body.ts';

// Volume, not abuse: the rate limit and the CA quota would otherwise answer most cases.
const harness = await createTestApp({ env: { RATE_LIMIT_MAX: '1000000', CA_QUOTA: '100000' } });
t.teardown(() => harness.close());
const { app, config } = harness;
const auth = harness.auth();

type Json = Record<string, unknown>;
type Schema = {
  type?: string;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
  minItems?: number;
};
type Parameter = { in: string; name: string; schema?: Schema };
type Operation = { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema?: Schema }> } };
interface Route {
  method: string;
  path: string;
  query: Parameter[];
  bodySchema?: Schema;
}

const FUZZED_ELSEWHERE = new Set(['POST /v1/private-certificates', 'POST /v1/private-certificates/csr']);
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

async function documentedRoutes(): Promise<Route[]> {
  const document = parse(await readFile(new URL('../../openapi/openapi.yaml', import.meta.url), 'utf8')) as {
    paths: Record<string, Record<string, Operation>>;
  };
  return Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([method]) => METHODS.includes(method) && !FUZZED_ELSEWHERE.has(`${method.toUpperCase()} ${path}`))
      .map(([method, operation]) => ({
        method: method.toUpperCase(),
        path,
        query: (operation.parameters ?? []).filter((parameter) => parameter.in === 'query'),
        bodySchema: operation.requestBody?.content['application/json']?.schema,
      })),
  );
}

// ---- seeded resources, created through the API -------------------------------------------------------------------

const DN = {
  common_name: 'fuzz',
  country: 'CN',
  state: 'zhejiang',
  locality: 'hangzhou',
  organization: 'acme',
  organizational_unit: 'mesh',
};

async function call(method: string, url: string, payload?: unknown): Promise<Json> {
  const response = await app.inject({
    method: method as 'POST',
    url,
    headers: auth,
    ...(payload === undefined ? {} : { payload: payload as Json }),
  });
  if (response.statusCode >= 300) throw new Error(`seeding ${method} ${url}: ${response.statusCode} ${response.body}`);
  return response.body ? (response.json() as Json) : {};
}

const CA = '/v1/private-certificate-authorities';
const CERT = '/v1/private-certificates';
const createCa = async (body: Json) =>
  (await call('POST', CA, { distinguished_name: DN, key_algorithm: 'EC256', signature_algorithm: 'SHA256', ...body })).ca_id as string;
const rootId = await createCa({ type: 'ROOT', validity: { type: 'YEAR', value: 5 } });
const subId = await createCa({
  type: 'SUBORDINATE',
  issuer_id: rootId,
  validity: { type: 'YEAR', value: 1 },
  path_length: 1,
  crl_configuration: { enabled: true, valid_days: 7 },
});
const pendingId = await createCa({ type: 'SUBORDINATE' });
await call('POST', `${CA}/${subId}/ocsp/switch`, { ocsp_switch: true });
const issue = async () =>
  (
    await call('POST', CERT, {
      issuer_id: subId,
      distinguished_name: { common_name: 'fuzz-leaf' },
      validity: { type: 'DAY', value: 10 },
      key_algorithm: 'EC256',
      type: 'ENTITY_CERT',
    })
  ).certificate_id as string;
const certificateId = await issue();
const createAccessKey = async () =>
  ((await call('POST', '/v1/access-keys', { description: 'fuzz', actions: ['pca:ca:list'] })).credential as Json).access as string;
const accessKey = await createAccessKey();
const pendingCsr = (await call('GET', `${CA}/${pendingId}/csr`)).csr as string;

/**
 * Targets of the operations that destroy (delete, revoke, disable): the seeded resources above must live for the
 * other routes. A victim that fell is replaced, and enable/restore get the fallen CAs, so those make progress too.
 */
const createVictimCa = () => createCa({ type: 'SUBORDINATE', issuer_id: rootId, validity: { type: 'DAY', value: 30 } });
const victims = { ca: await createVictimCa(), certificate: await issue(), access: await createAccessKey() };
const fallenCas: string[] = [];
async function replaceVictim(parameter: string): Promise<void> {
  // A fuzzed issuance-policy PUT may have left the issuers a policy that refuses the seeding requests.
  for (const issuer of [rootId, subId]) await call('PUT', `${CA}/${issuer}/issuance-policy`, {});
  if (parameter === 'ca_id') {
    fallenCas.push(victims.ca);
    victims.ca = await createVictimCa();
  } else if (parameter === 'certificate_id') {
    victims.certificate = await issue();
  } else if (parameter === 'access') {
    victims.access = await createAccessKey();
  }
}
await call('POST', `${CA}/${rootId}/tags`, { tag: { key: 'env', value: 'fuzz' } });
await call('POST', `${CERT}/${certificateId}/tags`, { tag: { key: 'env', value: 'fuzz' } });
await call('PUT', `${CA}/${rootId}/acme-policy`, { enabled: true });
const eabKids = [(await call('POST', `${CA}/${rootId}/acme/eab`)).kid as string, `eab_${'A'.repeat(22)}`];

const rootDer = (await app.inject({ method: 'GET', url: `/ca/${rootId}.crt` })).rawPayload;
const rootPem = toPem('CERTIFICATE', new Uint8Array(rootDer));
const subDer = (await app.inject({ method: 'GET', url: `/ca/${subId}.crt` })).rawPayload;

/** A well-formed OCSP request for the seeded certificate, made by openssl, as the seed the OCSP mutations start from. */
async function ocspRequestDer(): Promise<Buffer> {
  const dir = await scratch('route-fuzz');
  const issuer = await dir.write('sub.der', new Uint8Array(subDer));
  const pem = dir.file('sub.pem');
  await openssl(['x509', '-inform', 'DER', '-in', issuer, '-out', pem]);
  const serial = (await call('GET', `${CERT}/${certificateId}`)).serial_number as string;
  const out = dir.file('request.der');
  const result = await openssl(['ocsp', '-issuer', pem, '-serial', `0x${serial}`, '-no_nonce', '-reqout', out]);
  if (!result.ok) throw new Error(`openssl ocsp: ${result.stderr}`);
  return readFile(out);
}
const ocspSeed = await ocspRequestDer();

// ---- the generator -----------------------------------------------------------------------------------------------

const { pick, integer, chance, mutateBytes, jsonJunk, mutateJson: mutateJsonWith } = fuzzer(t, 20240611);

const urn = (id: string) => caUrn(config.region, config.defaultDomainId, id);
/** Ids of the wrong kind, unknown ids and URNs of another region or domain: never a live resource of the parameter's kind. */
const foreignIds = (): Record<string, string[]> => {
  const unknown = [
    randomUUID(),
    urn(randomUUID()),
    caUrn('eu-west-0', config.defaultDomainId, rootId),
    caUrn(config.region, OTHER_DOMAIN, rootId),
  ];
  return {
    ca_id: [...unknown, certificateId, accessKey],
    certificate_id: [...unknown, rootId, urn(rootId)],
    access: [...unknown, 'A'.repeat(20), rootId],
  };
};

/** Path segments as they go on the wire (already escaped where escaping is the point). */
const PATH_JUNK = [
  '%00',
  '..%2F',
  '..',
  '.',
  'x'.repeat(5000),
  encodeURIComponent('é✓😀\u202e'),
  '-1',
  '0',
  '%ZZ',
  '%',
  '%20',
  'null',
  '%2F%2F',
  'pca:::ca:',
  'pca%3A',
  '.crt',
  '.crl',
  `${'a'.repeat(36)}.crt`,
];

type Effect = 'destroys' | 'revives' | 'none';

/** Operations that spend their target get the victims; enable and restore get the fallen ones as well. */
function effectOf(route: Route): Effect {
  if ((route.method === 'DELETE' && !route.path.endsWith('/tags/delete')) || /\/(revoke|disable)$/.test(route.path)) return 'destroys';
  return /\/(enable|restore)$/.test(route.path) ? 'revives' : 'none';
}

/** Valid values of each path parameter for a route with that effect. */
function validPathValues(name: string, effect: Effect): string[] {
  switch (name) {
    case 'ca_id':
      if (effect === 'destroys') return [victims.ca, urn(victims.ca)];
      return [rootId, subId, pendingId, urn(subId), urn(rootId), ...(effect === 'revives' ? [victims.ca, ...fallenCas.slice(-3)] : [])];
    case 'certificate_id':
      return effect === 'destroys' ? [victims.certificate] : [certificateId];
    case 'access':
      return [victims.access];
    case 'file':
      return [`${rootId}.crt`, `${urn(subId)}.crt`];
    case 'crl_file':
      return [`${subId}.crl`, `${urn(subId)}.crl`];
    case 'kid':
      return eabKids;
    case 'request':
      return [ocspSeed.toString('base64'), mutateBytes(ocspSeed).toString('base64')];
    default:
      throw new Error(`no values for path parameter {${name}}`);
  }
}

function pathSegment(name: string, effect: Effect): string {
  if (chance(0.6)) return encodeURIComponent(pick(validPathValues(name, effect)));
  const foreign = foreignIds()[name];
  if (foreign && chance(0.4)) return encodeURIComponent(pick(foreign));
  return pick(PATH_JUNK);
}

function fillPath(route: Route): string {
  return route.path.replace(/\{([^}]+)\}/g, (_, name: string) => pathSegment(name, effectOf(route)));
}

const QUERY_JUNK = [
  '1e20',
  '9223372036854775808',
  '-1',
  '-0',
  '1.5',
  '',
  '%00',
  'x'.repeat(5000),
  encodeURIComponent('é😀'),
  'NaN',
  'Infinity',
  '0x10',
  'null',
  'true',
  '%5B%5D',
  '%7B%7D',
  '99999999999999999999999',
  '2147483648',
  '253402300800000',
];

function validQueryValue(parameter: Parameter): string {
  const schema = parameter.schema ?? {};
  if (schema.enum) return String(pick(schema.enum));
  if (schema.type === 'integer' || schema.type === 'number') {
    if (/time/.test(parameter.name)) return String(Date.now() + (integer(3) - 1) * 86_400_000);
    return String(Math.min(schema.maximum ?? 100, (schema.minimum ?? 0) + integer(20)));
  }
  if (parameter.name === 'resource_id') return pick([rootId, certificateId]);
  return pick(['fuzz', 'asm', 'env', 'pca:ca:list']);
}

function buildQuery(route: Route): string {
  const pairs: string[] = [];
  for (const parameter of route.query) {
    if (!chance(0.6)) continue;
    const value = chance(0.3) ? pick(QUERY_JUNK) : encodeURIComponent(validQueryValue(parameter));
    pairs.push(`${parameter.name}=${value}`);
    if (chance(0.08)) pairs.push(`${parameter.name}=${encodeURIComponent(validQueryValue(parameter))}`);
  }
  if (chance(0.05)) pairs.push(pick(['unknown=1', '%00=1', '=', '&&', 'limit', 'offset[]=1', `${'a'.repeat(3000)}=1`]));
  return pairs.length > 0 ? `?${pairs.join('&')}` : '';
}

/** Realistic values by property name, where the schema says only "string". */
function hintFor(name: string, route: Route): unknown {
  switch (name) {
    case 'key_algorithm':
      return pick(['EC256', 'EC384', 'RSA2048']);
    case 'signature_algorithm':
      return pick(['SHA256', 'SHA384']);
    case 'country':
      return 'CN';
    case 'issuer_id':
      return pick([rootId, subId, urn(rootId)]);
    case 'ca_id':
      return pendingId;
    case 'certificate':
      return rootPem;
    case 'csr':
      return pendingCsr;
    case 'certificate_chain':
      return '';
    case 'actions':
      return [pick(ACTIONS)];
    case 'password':
      return 'Passw0rd-fuzz';
    case 'type':
      if (route.path.endsWith('/export')) return pick(['APACHE', 'NGINX', 'IIS', 'TOMCAT', 'OTHER', 'ISTIO']);
      if (route.path === CA || route.path.endsWith('/activate')) return pick(['ROOT', 'SUBORDINATE']);
      return undefined;
    case 'key':
      return pick(['env', 'team', 'k']);
    case 'limit':
      return 10;
    default:
      return undefined;
  }
}

/** A value the schema accepts, most of the time: optional properties appear half the time. */
function sample(schema: Schema, route: Route, name = ''): unknown {
  const hint = hintFor(name, route);
  if (hint !== undefined) return hint;
  const options = schema.anyOf ?? schema.oneOf;
  if (options) return sample(pick(options.filter((option) => option.type !== 'null')), route, name);
  if (schema.enum) return pick(schema.enum);
  switch (schema.type) {
    case 'object': {
      const required = new Set(schema.required ?? []);
      return Object.fromEntries(
        Object.entries(schema.properties ?? {})
          .filter(([key]) => required.has(key) || chance(0.5))
          .map(([key, property]) => [key, sample(property, route, key)]),
      );
    }
    case 'array':
      return Array.from({ length: Math.max(schema.minItems ?? 0, 1) }, () => sample(schema.items ?? {}, route));
    case 'integer':
    case 'number':
      return Math.min(schema.maximum ?? Number.MAX_SAFE_INTEGER, Math.max(schema.minimum ?? 1, 1));
    case 'boolean':
      return chance(0.5);
    default:
      return `fuzz-${integer(100)}`;
  }
}

/** Bodies the schema alone cannot make valid. */
function baseBody(route: Route): Json {
  if (route.path.endsWith('/activate')) return { issuer_id: rootId, signature_algorithm: 'SHA256', validity: { type: 'DAY', value: 1 } };
  if (route.path === CA && route.method === 'POST') {
    const root = chance(0.3);
    return {
      type: root ? 'ROOT' : 'SUBORDINATE',
      ...(root ? {} : { issuer_id: pick([rootId, urn(rootId)]) }),
      distinguished_name: DN,
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 1 + integer(30) },
    };
  }
  const body = sample(route.bodySchema ?? { type: 'object' }, route);
  if (route.path.endsWith('/export') && body && typeof body === 'object') Object.assign(body, { type: 'APACHE' });
  return body as Json;
}

const JUNK: (() => unknown)[] = [
  ...jsonJunk,
  () => 'ROOT',
  () => 'SM2',
  () => 'pca:cn-north-4:x:ca:y',
  () => pick([randomUUID(), rootId, certificateId, urn(subId)]),
  () => Array.from({ length: 500 }, () => ({ key: 'k', value: 'v', values: ['v'] })),
];
const junk = (): unknown => pick(JUNK)();

const mutateJson = (base: Json): Json => mutateJsonWith(base, junk);

/** JSON texts no serializer makes. */
function rawJson(base: Json): string {
  const text = JSON.stringify(mutateJson(base));
  switch (integer(6)) {
    case 0:
      return text.slice(0, integer(text.length)) + pick(['', '}', '"', '\\', '\u0000', ']', '\\u00']);
    case 1:
      return `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
    case 2:
      return pick(['', '[]', '"x"', '1', 'null', 'true', '[{}]', '{}{}', '\ufeff{}']);
    case 3:
      return text.replace(/:/, ':1e999999,"z":');
    case 4:
      return `{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}},${text.slice(1)}`;
    default:
      return text.replace(/"([^"]*)"/, '"$1\\ud800"');
  }
}

interface Case {
  method: string;
  url: string;
  payload?: string | Buffer;
  headers: Record<string, string>;
}

const AUTH_JUNK = [
  'Bearer ',
  'Bearer x.y.z',
  'Basic Zm9vOmJhcg==',
  `Bearer ${'a'.repeat(9000)}`,
  'SDK-HMAC-SHA256 Access=x, SignedHeaders=host, Signature=00',
  'SDK-HMAC-SHA256 ,,,===',
];

/** Strings the database or a JSON column may refuse, written once into every top-level body property of every route. */
const POISON = ['\ud800', 'a\u0000b', 'x'.repeat(70_000)];

function nextCase(route: Route, poison?: [string, string]): Case {
  const url = fillPath(route) + buildQuery(route);
  const headers: Record<string, string> = chance(0.03) ? { authorization: pick(AUTH_JUNK) } : { ...auth };
  if (route.path.startsWith('/ocsp/') && route.method === 'POST') {
    const payload = chance(0.2) ? ocspSeed : chance(0.1) ? Buffer.alloc(integer(70_000), integer(256)) : mutateBytes(ocspSeed);
    return {
      method: route.method,
      url,
      payload,
      headers: { ...headers, 'content-type': pick(['application/ocsp-request', 'application/json', 'text/plain']) },
    };
  }
  const hasBody = route.bodySchema !== undefined || (route.method === 'POST' && chance(0.3));
  if (!hasBody || chance(0.05)) return { method: route.method, url, headers };
  const base = route.bodySchema ? baseBody(route) : {};
  if (poison)
    return {
      method: route.method,
      url: fillPath(route),
      payload: JSON.stringify({ ...base, [poison[0]]: poison[1] }),
      headers: { ...auth, 'content-type': 'application/json' },
    };
  const payload = chance(0.15) ? JSON.stringify(base) : chance(0.8) ? JSON.stringify(mutateJson(base)) : rawJson(base);
  const contentType = chance(0.95)
    ? 'application/json'
    : pick(['text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'application/json;;']);
  return { method: route.method, url, payload, headers: { ...headers, 'content-type': contentType } };
}

/**
 * Cases per route: signing or key generation makes some routes slow. CI's count keeps the file within a few minutes on
 * a loaded 2-core machine (it once ran past tap's 600 s timeout at three times this count); `npm run fuzz` multiplies it.
 */
function casesFor(route: Route): number {
  if (route.path === CA && route.method === 'POST') return fuzzCases(25);
  if (/\/(activate|export|order)$/.test(route.path)) return fuzzCases(25);
  return fuzzCases(50);
}

interface Failure {
  status: number;
  method: string;
  url: string;
  body: string;
  response: string;
}

const isRouteNotFound = (body: { error_msg?: unknown }) => typeof body.error_msg === 'string' && body.error_msg.startsWith('route ');

t.test('every route but issuance answers mutated requests with 2xx or a contract 4xx, never a 5xx', async (t) => {
  const routes = await documentedRoutes();
  t.ok(routes.length >= 50, `${routes.length} documented operations besides issuance`);
  const failures: Failure[] = [];
  const failuresByKind = new Map<string, number>();
  const tally = new Map<string, { statuses: Record<number, number>; answered: number; ok: number; ms: number }>();
  const poisoned = routes.flatMap((route) =>
    Object.keys(route.bodySchema?.properties ?? {}).flatMap((key) =>
      POISON.map((value) => ({ route, poison: [key, value] as [string, string] })),
    ),
  );
  const queue: { route: Route; poison?: [string, string] }[] = [
    ...poisoned,
    ...routes.flatMap((route) => Array.from({ length: casesFor(route) }, () => ({ route }))),
  ];
  // Interleaved, so a destructive route spoils its victims gradually rather than before the others ran.
  for (let i = queue.length - 1; i > 0; i--) {
    const j = integer(i + 1);
    [queue[i], queue[j]] = [queue[j], queue[i]];
  }
  for (const { route, poison } of queue) {
    const request = nextCase(route, poison);
    const started = performance.now();
    const response = await app.inject({
      method: request.method as 'GET',
      url: request.url,
      headers: request.headers,
      ...(request.payload === undefined ? {} : { payload: request.payload }),
    });
    const key = `${route.method} ${route.path}`;
    const entry = tally.get(key) ?? { statuses: {}, answered: 0, ok: 0, ms: 0 };
    tally.set(key, entry);
    entry.ms += performance.now() - started;
    entry.statuses[response.statusCode] = (entry.statuses[response.statusCode] ?? 0) + 1;
    if (response.statusCode < 300) {
      entry.ok++;
      if (effectOf(route) === 'destroys') await replaceVictim(route.path.match(/\{([^}]+)\}/)![1]);
    }
    let problem = response.statusCode >= 500 ? 'server error' : '';
    if (response.statusCode >= 300) {
      let body: { error_code?: unknown; error_msg?: unknown } = {};
      try {
        body = response.json();
      } catch {
        problem ||= 'refusal body is not JSON';
      }
      if (typeof body.error_code !== 'string' || typeof body.error_msg !== 'string') problem ||= 'refusal without a contract error body';
      if (response.statusCode < 500 && !isRouteNotFound(body)) entry.answered++;
    } else {
      entry.answered++;
    }
    if (!problem) continue;
    // A few of each kind, so the first twenty reported show distinct findings.
    const kind = `${key} ${response.statusCode} ${problem}`;
    const seen = failuresByKind.get(kind) ?? 0;
    failuresByKind.set(kind, seen + 1);
    if (seen < 2) {
      const payload =
        request.payload === undefined
          ? ''
          : Buffer.isBuffer(request.payload)
            ? `<${request.payload.length} bytes> ${request.payload.toString('base64').slice(0, 200)}`
            : request.payload.slice(0, 300);
      failures.push({
        status: response.statusCode,
        method: request.method,
        url: request.url.slice(0, 300),
        body: payload,
        response: response.body.slice(0, 300),
      });
    }
  }
  t.same(
    failures.slice(0, 20),
    [],
    `no 5xx and every refusal has a contract error body (${JSON.stringify(Object.fromEntries(failuresByKind))})`,
  );
  for (const [key, entry] of tally) {
    t.ok(entry.answered > 0, `${key} reached its handler: ${JSON.stringify(entry.statuses)} ${Math.round(entry.ms)}ms`);
  }
  const withSuccess = [...tally.values()].filter((entry) => entry.ok > 0).length;
  t.ok(withSuccess >= tally.size * 0.6, `${withSuccess} of ${tally.size} routes answered at least one case with a 2xx`);
});

t.test('a body nested 200,000 deep is refused before parsing; within the limit, a refused character at the bottom is found', async (t) => {
  const send = (depth: number, bottom: string) =>
    app.inject({
      method: 'POST',
      url: CA,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: `{"type":"ROOT","x":${'['.repeat(depth)}${bottom}${']'.repeat(depth)}}`,
    });
  for (const depth of [200_000, MAX_JSON_DEPTH]) {
    const deep = await send(depth, '1');
    t.equal(deep.statusCode, 400, `${depth} arrays in an object`);
    t.match(deep.json(), { error_code: 'PCA.00020001', error_msg: /nests deeper than 32 levels/ });
  }
  // Brackets inside strings, escaped quotes included, do not count.
  const inString = await send(MAX_JSON_DEPTH - 1, JSON.stringify(`"${'['.repeat(100)}`));
  t.equal(inString.statusCode, 400, 'refused by the schema (no name)');
  t.notMatch(inString.json().error_msg, /nests deeper/, 'brackets in a string are not nesting');
  for (const bottom of ['"\\u0000"', '"\\ud800"']) {
    const response = await send(MAX_JSON_DEPTH - 1, bottom);
    t.equal(response.statusCode, 400, bottom);
    t.match(response.json(), { error_code: 'PCA.00020001', error_msg: /NUL|surrogate/ }, bottom);
  }
});
