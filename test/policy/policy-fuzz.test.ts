/**
 * Fuzzing of issuance policy documents over HTTP: seeded random documents (well-formed, with junk entries, wrong
 * types, unknown fields, huge lists) are PUT on a CA; every answer is a 200 or a 400 in the contract's error body,
 * never a 5xx. After each accepted document, certificates are requested for random names: one is issued only when
 * the reference implementation (test/policy/reference.ts) allows the name under the document as sent.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { fuzzer } from '../helpers/fuzz.ts';
import { CA, client } from '../ca/support.ts';
import { refDnsPattern, refIpInCidr } from './reference.ts';

const DOCUMENTS = 250;
const NAMES_PER_DOCUMENT = 3;

const harness = await createTestApp({ env: { RATE_LIMIT_MAX: '1000000' } });
t.teardown(() => harness.close());
const api = client(harness);
const { pick, integer, chance } = fuzzer(t, 0x1902);

const LABELS = ['a', 'svc', 'cluster', 'local', 'prod', 'example', 'xn--bcher-kva', 'bücher', 'B'];
const name = (depth = 1 + integer(3)) => Array.from({ length: depth }, () => pick(LABELS)).join('.');
const JUNK: unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  '',
  ' ',
  '*',
  '*.',
  'a..b',
  '**.a',
  '*.*.a',
  'a b',
  '\u0000',
  'x'.repeat(600),
  [],
  {},
  [[]],
  { dns: 1 },
];
const junk = () => pick(JUNK);
const maybeJunk = <T>(value: () => T) => (chance(0.08) ? junk() : value());
const list = <T>(value: () => T, max = 4) =>
  chance(0.03) ? Array.from({ length: 101 }, value) : Array.from({ length: integer(max) }, () => maybeJunk(value));
const dnsPattern = () => (chance(0.5) ? `*.${name(1 + integer(2))}` : name());
const cidr = () => pick(['10.0.0.0/8', '10.1.0.0/16', '192.168.0.0/16', '10.0.0.1', 'fd00::/8', '0.0.0.0/0', '10.0.0.1/8', '300.0.0.0/8']);

function randomDocument(): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  const names = () => ({
    dns: list(dnsPattern),
    ...(chance(0.4) ? { ip: list(cidr, 3) } : {}),
    ...(chance(0.1) ? { uri: list(() => pick(['spiffe://cluster.local/*', 'https://*.a/x', 'urn:x', 'spiffe://*/x'])) } : {}),
  });
  if (chance(0.8)) document.allowed = maybeJunk(names);
  if (chance(0.5)) document.denied = maybeJunk(names);
  if (chance(0.3)) document.max_validity_days = maybeJunk(() => 1 + integer(400));
  if (chance(0.3)) document.key_algorithms = maybeJunk(() => list(() => pick(['EC256', 'RSA2048', 'EC384', 'SM2', 'ec256']), 3));
  if (chance(0.3))
    document.allowed_ekus = maybeJunk(() =>
      list(() => pick(['serverAuth', 'clientAuth', 'OCSPSigning', '1.2.3.4', 'anyExtendedKeyUsage', 'server_auth']), 3),
    );
  if (chance(0.2)) document.require_name_constraints_for_cas = maybeJunk(() => chance(0.5));
  if (chance(0.05)) document[pick(['alowed', 'deny', 'max_validity', '__proto__', 'constructor'])] = junk();
  return document;
}

/** Whether the reference allows a DNS or IP SAN under a document the service accepted (as it was sent). */
function referenceAllows(document: Record<string, any>, san: { type: 'DNS' | 'IP'; value: string }): boolean {
  const of = (lists: any, key: 'dns' | 'ip'): string[] => (lists && Array.isArray(lists[key]) ? lists[key] : []);
  const matches = (pattern: string) =>
    san.type === 'DNS'
      ? refDnsPattern(pattern, san.value)
      : refIpInCidr(san.value, pattern.includes('/') ? pattern : `${pattern}/${pattern.includes(':') ? 128 : 32}`);
  const key = san.type === 'DNS' ? 'dns' : 'ip';
  if (of(document.denied, key).some(matches)) return false;
  if (document.allowed == null) return true;
  return of(document.allowed, key).some(matches);
}

t.test('random policy documents: never a 5xx, and no accepted name outside the allowed set', async (t) => {
  const caId = await api.root();
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  let issued = 0;
  let refusedNames = 0;
  for (let i = 0; i < DOCUMENTS; i++) {
    const document = randomDocument();
    const response = chance(0.03)
      ? await harness.app.inject({
          method: 'PUT',
          url: `${CA}/${caId}/issuance-policy`,
          headers: { ...harness.auth(), 'content-type': 'application/json' },
          payload: JSON.stringify(document).slice(0, integer(40)),
        })
      : await harness.app.inject({ method: 'PUT', url: `${CA}/${caId}/issuance-policy`, headers: harness.auth(), payload: document });
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
    const body = response.json();
    if (
      response.statusCode !== 200 &&
      !(response.statusCode === 400 && typeof body.error_code === 'string' && typeof body.error_msg === 'string')
    ) {
      problems.push(`PUT ${JSON.stringify(document)} -> ${response.statusCode} ${response.body}`);
    }
    if (response.statusCode !== 200) continue;
    for (let n = 0; n < NAMES_PER_DOCUMENT; n++) {
      const san = chance(0.7)
        ? { type: 'DNS' as const, value: `${pick(['', 'x.', 'x.y.'])}${name()}`.replace(/bücher/g, 'xn--bcher-kva') }
        : { type: 'IP' as const, value: pick(['10.0.0.1', '10.1.2.3', '192.168.1.1', '8.8.8.8', 'fd00::1']) };
      const issue = await api.call('POST', '/v1/private-certificates', {
        issuer_id: caId,
        distinguished_name: { common_name: 'fuzzed' },
        validity: { type: 'DAY', value: 1 },
        key_algorithm: 'EC256',
        extended_key_usage: { server_auth: true },
        subject_alternative_names: [san],
      });
      if (issue.status >= 500) problems.push(`issuance for ${JSON.stringify(san)} under ${JSON.stringify(document)} -> ${issue.status}`);
      if (issue.status === 200) {
        issued++;
        if (!referenceAllows(document, san)) problems.push(`issued ${JSON.stringify(san)} outside ${JSON.stringify(document)}`);
      } else {
        refusedNames++;
        if (issue.status !== 400 || issue.body.error_code !== 'PCA.00020001')
          problems.push(`issuance -> ${issue.status} ${JSON.stringify(issue.body)}`);
      }
    }
  }
  t.same(problems.slice(0, 5), [], `${problems.length} problems; PUT statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  t.ok((statuses.get(200) ?? 0) > 20 && (statuses.get(400) ?? 0) > 20, 'both accepted and refused documents were seen');
  t.ok(issued > 10 && refusedNames > 10, `names issued (${issued}) and refused (${refusedNames})`);
});
