/**
 * URI deny rules against other spellings of the same resource (RFC 3986 §6.2.2): percent-encoded unreserved
 * characters, the case of percent-encodings, dot segments, and URIs whose host the matcher cannot compare
 * (`https:///admin/x`, which WHATWG reads as host `admin`). Allow rules stay exact and also refuse a path whose dot
 * segments climb out of the allowed prefix. Unit cases through the evaluator, then the same through the HTTP API.
 */
import t from 'tap';
import { evaluateIssuance, parseIssuancePolicy } from '../../src/services/policy/index.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { createTestApp } from '../helpers/app.ts';

const judge = (document: object, value: string): string => {
  const violation = evaluateIssuance(
    { policies: [parseIssuancePolicy(document)!], chainConstraints: [] },
    {
      kind: 'ENTITY',
      names: [{ type: 'URI', value, field: 'san' }],
      notBefore: new Date(0),
      notAfter: new Date(86_400_000),
      keyAlgorithm: 'EC256',
      extendedKeyUsages: ['1.3.6.1.5.5.7.3.1'],
    },
  );
  return violation ? `${violation.rule}: ${violation.message}` : 'accepted';
};
const deny = (pattern: string, value: string) => judge({ denied: { uri: [pattern] } }, value);
const allow = (pattern: string, value: string) => judge({ allowed: { uri: [pattern] } }, value);
const quote = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

t.test('a deny rule compares both sides in normal form', async (t) => {
  const denials: [string, string][] = [
    // Percent-encoded unreserved characters are those characters.
    ['https://*.example.com/admin/*', 'https://a.example.com/%61dmin/x'],
    ['https://*.example.com/admin/*', 'https://a.example.com/%61%64%6D%69%6E'],
    ['https://h.example/a-b/*', 'https://h.example/a%2Db/x'],
    ['https://h.example/~u/*', 'https://h.example/%7eu/x'],
    ['https://h.example/admin', 'https://h.example/%61dmin?x'],
    // The hex of a percent-encoding compares without case; a reserved character's encoding stays encoded.
    ['https://h.example/a%2Fb', 'https://h.example/a%2fb'],
    ['https://h.example/a%2fb/*', 'https://h.example/a%2Fb/c'],
    // Dot segments, written or percent-encoded.
    ['https://*.example.com/admin/*', 'https://a.example.com/x/../admin/y'],
    ['https://*.example.com/admin/*', 'https://a.example.com/./admin/y'],
    ['https://h.example/admin/y', 'https://h.example/admin/./y'],
    ['https://*.example.com/admin/*', 'https://a.example.com/%2E%2E/admin/y'],
    ['https://*.example.com/admin/*', 'https://a.example.com/x/%2e%2E/admin/y'],
    ['https://h.example:443/admin/*', 'https://h.example/./admin/x'],
    // The pattern is normalised too.
    ['https://h.example/%61dmin/*', 'https://h.example/admin/x'],
    ['https://h.example/x/../admin/*', 'https://h.example/admin/x'],
    // A URI without authority: percent-encodings only.
    ['urn:example:admin', 'urn:example:%61dmin'],
    ['urn:example:a%2fb', 'urn:example:a%2Fb'],
  ];
  for (const [pattern, value] of denials)
    t.match(deny(pattern, value), new RegExp(`^name_denied: .* \\(denied uri '${quote(pattern)}'\\)$`), `${pattern} denies ${value}`);
});

t.test('a deny rule takes a URI of its scheme whose host it cannot compare, whatever its host and path', async (t) => {
  const unjudged: [string, string][] = [
    ['https://*.example.com/admin/*', 'https:///admin/x'],
    ['https://*.example.com/admin/*', 'https:/a.example.com/admin/x'],
    ['https://*.example.com/admin/*', 'https:a.example.com/admin/x'],
    ['https://*.example.com/admin/*', 'https://a.example.com./admin/x'],
    ['spiffe://prod.example/*', 'spiffe:///ns/a'],
  ];
  for (const [pattern, value] of unjudged)
    t.match(
      deny(pattern, value),
      new RegExp(
        `^name_denied: san URI name '${quote(value)}' is denied by .* \\(its host cannot be compared with denied uri '${quote(pattern)}'\\)$`,
      ),
      `${pattern} denies ${value}`,
    );
});

t.test('an allow rule refuses dot segments that climb out of its prefix', async (t) => {
  t.match(allow('https://h.example/public/*', 'https://h.example/public/../admin/x'), /^name_not_allowed: /);
  t.match(allow('https://h.example/public/*', 'https://h.example/public/%2E%2E/admin'), /^name_not_allowed: /);
  t.match(allow('https://h.example/public/*', 'https://h.example/public/x/../../admin'), /^name_not_allowed: /);
});

// These pass before the change too: they pin what normalisation must not do.
t.test('controls: reserved encodings stay, other schemes pass, allow rules do not grow', async (t) => {
  t.equal(deny('https://h.example/a/b', 'https://h.example/a%2Fb'), 'accepted', '%2F is not a path delimiter');
  t.equal(deny('https://*.example.com/admin/*', 'https://a.example.com/%2E%2E%2Fadmin/x'), 'accepted', '..%2F is no dot segment');
  t.equal(deny('https://*.example.com/admin/*', 'http:///admin/x'), 'accepted', 'a host-less URI of another scheme');
  t.equal(deny('urn:example:a', 'urn:example:b'), 'accepted');
  t.equal(allow('https://h.example/public/*', 'https://h.example/public/%7Eu'), 'accepted');
  t.match(allow('https://h.example/admin/*', 'https://h.example/%61dmin/x'), /^name_not_allowed: /, 'allow rules stay exact');
});

t.test('through the HTTP API: server-made keys and a CSR', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const api = client(harness);
  const dir = await scratch('uri-deny-normalization');
  const rootId = await api.root();
  const newCa = async (name: string, policy: Json) => {
    const id = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: name } });
    t.equal((await api.call('PUT', `${CA}/${id}/issuance-policy`, policy)).status, 200);
    return id;
  };
  const issue = (issuer: string, value: string) =>
    api.call('POST', '/v1/private-certificates', {
      issuer_id: issuer,
      distinguished_name: { common_name: 'workload' },
      validity: { type: 'DAY', value: 30 },
      key_algorithm: 'EC256',
      subject_alternative_names: [{ type: 'URI', value }],
    });

  const denyingId = await newCa('uri-denying', { denied: { uri: ['https://*.example.com/admin/*'] } });
  const rule = quote("denied uri 'https://*.example.com/admin/*'");
  for (const value of ['https://a.example.com/%61dmin/x', 'https://a.example.com/x/../admin/y', 'https://a.example.com/%2e%2E/admin/y'])
    assertError(
      t,
      await issue(denyingId, value),
      400,
      'PCA.00020001',
      new RegExp(`URI name '${quote(value)}' is denied by .* \\(${rule}\\)`),
    );
  assertError(
    t,
    await issue(denyingId, 'https:///admin/x'),
    400,
    'PCA.00020001',
    new RegExp(`URI name 'https:///admin/x' is denied by .* \\(its host cannot be compared with ${rule}\\)`),
  );
  const { csr } = await opensslCsr(
    dir,
    'encoded-admin',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=w', '-addext', 'subjectAltName=URI:https://a.example.com/%61dmin/x'],
  );
  assertError(
    t,
    await api.call('POST', '/v1/private-certificates/csr', { issuer_id: denyingId, csr, validity: { type: 'DAY', value: 30 } }),
    400,
    'PCA.00020001',
    new RegExp(`csr subjectAltName\\[0\\] URI name 'https://a\\.example\\.com/%61dmin/x' is denied by .* \\(${rule}\\)`),
  );

  const allowingId = await newCa('uri-allowing', { allowed: { uri: ['https://h.example/public/*'] } });
  assertError(
    t,
    await issue(allowingId, 'https://h.example/public/../admin/x'),
    400,
    'PCA.00020001',
    /URI name 'https:\/\/h\.example\/public\/\.\.\/admin\/x' is not allowed/,
  );
});
