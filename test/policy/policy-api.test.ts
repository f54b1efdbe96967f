/**
 * Issuance policies and name constraints through the HTTP API (issue #19): the policy resource (PUT/GET, the CA
 * object, audit), and its enforcement on every issuance path — server-made keys, create-by-CSR (entity and
 * INTERMEDIATE_CA), subordinate creation and activation — plus the name constraints of a CA's own chain. Every
 * refusal is a 400 in the contract's error body naming the offending field and value; certificates are read by
 * openssl.
 */
import t from 'tap';
import { createTestApp, OTHER_DOMAIN } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { KEY_ARGS, caRequestArgs, certificateText, openssl, opensslCsr, scratch } from '../certificates/support.ts';

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const dir = await scratch('policy-api');
const CERT = '/v1/private-certificates';
const policyUrl = (caId: string) => `${CA}/${caId}/issuance-policy`;

const ISSUE_EXAMPLE = {
  allowed: { dns: ['*.svc.cluster.local', '*.example.internal'], ip: ['10.0.0.0/8'], uri: ['spiffe://cluster.local/*'] },
  denied: { dns: ['*.prod.example.internal'] },
  max_validity_days: 90,
  key_algorithms: ['EC256', 'RSA2048'],
  allowed_ekus: ['serverAuth', 'clientAuth'],
  require_name_constraints_for_cas: true,
};

const rootId = await api.root();
const policedId = await api.subordinate(rootId, { path_length: 3, distinguished_name: { ...DN, common_name: 'policed' } });
const put = (caId: string, document: unknown) => api.call('PUT', policyUrl(caId), document);

/** A certificate with a server-made key under `issuer`: the policy example's happy defaults, then `overrides`. */
const serverMade = (issuer: string, overrides: Json = {}) =>
  api.call('POST', CERT, {
    issuer_id: issuer,
    distinguished_name: { common_name: 'workload' },
    validity: { type: 'DAY', value: 30 },
    key_algorithm: 'EC256',
    extended_key_usage: { server_auth: true },
    ...overrides,
  });

async function byCsr(issuer: string, name: string, reqArgs: string[], overrides: Json = {}) {
  const { csr } = await opensslCsr(dir, name, [...KEY_ARGS.p256], reqArgs);
  return api.call('POST', `${CERT}/csr`, { issuer_id: issuer, csr, validity: { type: 'DAY', value: 30 }, ...overrides });
}

t.test('PUT and GET the policy: normalised, shown on the CA object, audited, removable', async (t) => {
  const stored = await put(policedId, {
    ...ISSUE_EXAMPLE,
    allowed: { ...ISSUE_EXAMPLE.allowed, dns: [...ISSUE_EXAMPLE.allowed.dns, '*.Bücher.Example', '*.svc.cluster.local'] },
  });
  t.equal(stored.status, 200, JSON.stringify(stored.body));
  const expected = {
    allowed: {
      dns: ['*.svc.cluster.local', '*.example.internal', '*.xn--bcher-kva.example'],
      ip: ['10.0.0.0/8'],
      uri: ['spiffe://cluster.local/*'],
      email: [],
    },
    denied: { dns: ['*.prod.example.internal'], ip: [], uri: [], email: [] },
    max_validity_days: 90,
    key_algorithms: ['RSA2048', 'EC256'],
    allowed_ekus: ['serverAuth', 'clientAuth'],
    require_name_constraints_for_cas: true,
  };
  t.same(stored.body, expected, 'IDNA and case normalised, duplicates dropped');
  t.same((await api.call('GET', policyUrl(policedId))).body, expected);
  t.same((await api.show(policedId)).issuance_policy, expected, 'the CA object shows it');
  const events = await harness.database.prisma.auditEvent.findMany({
    where: { action: 'pca:ca:setIssuancePolicy', resourceId: policedId },
  });
  t.equal(events.length, 1, 'audited');
  t.same((events[0].detail as Json).issuance_policy, expected);
  t.equal((events[0].detail as Json).previous, null);

  const other = await api.root({ distinguished_name: { ...DN, common_name: 'no-policy' } });
  t.same((await api.call('GET', policyUrl(other))).body, {
    allowed: null,
    denied: null,
    max_validity_days: null,
    key_algorithms: null,
    allowed_ekus: null,
    require_name_constraints_for_cas: false,
  });
  t.equal((await put(other, { max_validity_days: 7 })).status, 200);
  t.equal((await api.show(other)).issuance_policy.max_validity_days, 7);
  t.equal((await put(other, {})).status, 200);
  t.equal((await api.show(other)).issuance_policy, null, '{} removes it');
  const removal = await harness.database.prisma.auditEvent.findFirst({
    where: { action: 'pca:ca:setIssuancePolicy', resourceId: other },
    orderBy: { createdAt: 'desc' },
  });
  t.match(removal?.detail, { previous: { max_validity_days: 7 }, issuance_policy: null });
});

t.test('bad policy documents: 400 naming the field, never stored', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ alowed: { dns: ['a.example'] } }, /alowed/],
    [{ allowed: { dns: ['a.example', '*.'] } }, /allowed\.dns\[1\]/],
    [{ allowed: { dns: ['a.*.example'] } }, /allowed\.dns\[0\]/],
    [{ denied: { ip: ['10.0.0.1/8'] } }, /denied\.ip\[0\]/],
    [{ allowed: { uri: ['spiffe://cluster.local/*/x'] } }, /allowed\.uri\[0\]/],
    [{ allowed: { dnsnames: [] } }, /allowed\.dnsnames/],
    [{ max_validity_days: 0 }, /max_validity_days/],
    [{ max_validity_days: 100000 }, /max_validity_days/],
    [{ key_algorithms: ['SM2'] }, /key_algorithms\[0\]/],
    [{ key_algorithms: [] }, /key_algorithms must be a non-empty array/],
    [{ allowed_ekus: ['serverAuth', 'anyExtendedKeyUsage'] }, /allowed_ekus\[1\]/],
    [{ allowed_ekus: ['2.5.29.37.0'] }, /anyExtendedKeyUsage can never be granted/],
    [{ require_name_constraints_for_cas: 'yes' }, /require_name_constraints_for_cas/],
    [[], /body/],
  ];
  const before = (await api.call('GET', policyUrl(policedId))).body;
  for (const [document, message] of cases) {
    assertError(t, await put(policedId, document), 400, 'PCA.00020001', message);
  }
  t.same((await api.call('GET', policyUrl(policedId))).body, before, 'the stored policy is unchanged');
  assertError(t, await api.call('PUT', policyUrl(policedId), ISSUE_EXAMPLE, OTHER_DOMAIN), 404, 'PCA.10010002');
  const reader = await harness.app.inject({
    method: 'PUT',
    url: policyUrl(policedId),
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` },
    payload: {},
  });
  t.equal(reader.statusCode, 403, 'writing needs pca:ca:create');
  const readOnly = await harness.app.inject({
    method: 'GET',
    url: policyUrl(policedId),
    headers: { authorization: `Bearer ${harness.tokenWith(['pca:ca:get'])}` },
  });
  t.equal(readOnly.statusCode, 200, 'reading needs pca:ca:get');
});

t.test('server-made keys: names, validity, key algorithm and EKUs judged, the first offence named', async (t) => {
  const ok = await serverMade(policedId, {
    distinguished_name: { common_name: 'web' },
    subject_alternative_names: [
      { type: 'DNS', value: 'web.default.svc.cluster.local' },
      { type: 'IP', value: '10.1.2.3' },
      { type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/web' },
      { type: 'DNS', value: '*.api.example.internal' },
    ],
    validity: { type: 'DAY', value: 90 },
  });
  t.equal(ok.status, 200, `inside the policy: ${JSON.stringify(ok.body)}`);
  const refusals: [Json, RegExp][] = [
    [
      {
        subject_alternative_names: [
          { type: 'DNS', value: 'a.svc.cluster.local' },
          { type: 'DNS', value: 'db.prod.example.internal' },
        ],
      },
      /subject_alternative_names\[1\] DNS name 'db\.prod\.example\.internal' is denied .*'\*\.prod\.example\.internal'/,
    ],
    [{ subject_alternative_names: [{ type: 'DNS', value: '*.prod.example.internal' }] }, /denied/],
    [
      {
        subject_alternative_names: [
          { type: 'DNS', value: '*.example.internal' },
          { type: 'DNS', value: 'example.internal' },
        ],
      },
      /subject_alternative_names\[1\] DNS name 'example\.internal' is not allowed/,
    ],
    [
      { subject_alternative_names: [{ type: 'IP', value: '192.168.1.1' }] },
      /subject_alternative_names\[0\] IP name '192\.168\.1\.1' is not allowed .*10\.0\.0\.0\/8/,
    ],
    [
      { subject_alternative_names: [{ type: 'URI', value: 'spiffe://evil.example/ns/a' }] },
      /URI name 'spiffe:\/\/evil\.example\/ns\/a' is not allowed/,
    ],
    [
      { subject_alternative_names: [{ type: 'EMAIL', value: 'ops@example.internal' }] },
      /EMAIL name 'ops@example\.internal' is not allowed .*allows no EMAIL names/,
    ],
    [
      { distinguished_name: { common_name: 'evil.example.com' } },
      /distinguished_name\.common_name DNS name 'evil\.example\.com' is not allowed/,
    ],
    [{ validity: { type: 'DAY', value: 91 } }, /validity exceeds the 90 days/],
    [{ validity: { type: 'HOUR', value: 90 * 24 + 1 } }, /validity exceeds the 90 days/],
    [{ key_algorithm: 'EC384' }, /key algorithm EC384 is not allowed .*RSA2048, EC256/],
    [{ extended_key_usage: { server_auth: true, code_signing: true } }, /extended key usage codeSigning is not allowed/],
    [{ extended_key_usage: {} }, /requires an extended key usage from: serverAuth, clientAuth/],
  ];
  const usage = async () => (await api.call('GET', `${CERT}/quotas`)).body.quotas.resources[0].used;
  const used = await usage();
  for (const [overrides, message] of refusals) {
    assertError(t, await serverMade(policedId, overrides), 400, 'PCA.00020001', message);
  }
  t.equal(await usage(), used, 'no refused request issued or counted anything');
});

t.test('deny rules refuse spelling variants of a denied URI or mailbox; the names beside them are issued', async (t) => {
  const denyingId = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'variant-denying' } });
  const denied = { uri: ['spiffe://prod.example/*', 'https://admin.example:443/*'], email: ['admin@example.com'] };
  t.equal((await put(denyingId, { denied })).status, 200);
  const issue = (type: string, value: string) => serverMade(denyingId, { subject_alternative_names: [{ type, value }] });
  const refusals: [string, string, string][] = [
    ['URI', 'spiffe://prod.example', 'spiffe://prod.example/*'],
    ['URI', 'spiffe://prod.example/ns/a?x#y', 'spiffe://prod.example/*'],
    ['URI', 'https://admin.example/console', 'https://admin.example:443/*'],
    ['EMAIL', 'Admin@example.com', 'admin@example.com'],
  ];
  const quote = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  for (const [type, value, rule] of refusals) {
    assertError(
      t,
      await issue(type, value),
      400,
      'PCA.00020001',
      new RegExp(`${type} name '${quote(value)}' is denied by .* \\(denied ${type.toLowerCase()} '${quote(rule)}'\\)`),
    );
  }
  t.equal((await issue('URI', 'spiffe://staging.example/ns/a')).status, 200, 'another trust domain is issued');
  t.equal((await issue('EMAIL', 'ops@example.com')).status, 200, 'another mailbox is issued');
});

t.test('create-by-CSR, entity: the CSR names judged; timeStamping only when the policy grants it', async (t) => {
  const inside = await byCsr(policedId, 'csr-inside', [
    '-subj',
    '/CN=api.svc.cluster.local',
    '-addext',
    'subjectAltName=DNS:api.svc.cluster.local,URI:spiffe://cluster.local/ns/a/sa/b',
  ]);
  t.equal(inside.status, 200, JSON.stringify(inside.body));
  assertError(
    t,
    await byCsr(policedId, 'csr-evil', ['-subj', '/CN=workload', '-addext', 'subjectAltName=DNS:a.svc.cluster.local,DNS:evil.example.com']),
    400,
    'PCA.00020001',
    /csr subjectAltName\[1\] DNS name 'evil\.example\.com' is not allowed/,
  );
  assertError(
    t,
    await byCsr(policedId, 'csr-cn', ['-subj', '/CN=evil.example.com']),
    400,
    'PCA.00020001',
    /csr subject common name DNS name 'evil\.example\.com'/,
  );
  assertError(
    t,
    await byCsr(policedId, 'csr-long', ['-subj', '/CN=x', '-addext', 'subjectAltName=DNS:x.svc.cluster.local'], {
      validity: { type: 'MONTH', value: 3 },
    }),
    400,
    'PCA.00020001',
    /validity exceeds the 90 days/,
  );
  const rsa = await opensslCsr(
    dir,
    'csr-rsa3072',
    ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'],
    ['-subj', '/CN=x', '-addext', 'subjectAltName=DNS:x.svc.cluster.local'],
  );
  assertError(
    t,
    await api.call('POST', `${CERT}/csr`, { issuer_id: policedId, csr: rsa.csr, validity: { type: 'DAY', value: 1 } }),
    400,
    'PCA.00020001',
    /key algorithm RSA3072 is not allowed/,
  );

  const tsa = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'tsa-ca' } });
  const stamping = ['-subj', '/CN=tsa', '-addext', 'extendedKeyUsage=critical,timeStamping'];
  assertError(
    t,
    await byCsr(tsa, 'tsa-1', stamping),
    400,
    'PCA.00020001',
    /timeStamping is issued only when the issuing CA's issuance policy lists it/,
  );
  t.equal((await put(tsa, { allowed_ekus: ['timeStamping'] })).status, 200);
  const granted = await byCsr(tsa, 'tsa-2', stamping);
  t.equal(granted.status, 200, `granted by the policy: ${JSON.stringify(granted.body)}`);
  assertError(
    t,
    await byCsr(tsa, 'tsa-3', ['-subj', '/CN=web']),
    400,
    'PCA.00020001',
    /extended key usage serverAuth is not allowed .*\(allowed: timeStamping\)/,
  );
});

/** openssl req arguments of a CA CSR named `name`, with these name constraints (critical) if any. */
const caCsr = (name: string, constraints?: string) =>
  caRequestArgs(name, ...(constraints ? [`nameConstraints=critical,${constraints}`] : []));

t.test('CAs under require_name_constraints_for_cas: constraints required, within allowed, reaching no denied name', async (t) => {
  const intermediate = { type: 'INTERMEDIATE_CA', path_length: 0 };
  assertError(
    t,
    await byCsr(policedId, 'ca-bare', caCsr('bare'), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints must permit at least one subtree/,
  );
  assertError(
    t,
    await byCsr(policedId, 'ca-wide', caCsr('wide', 'permitted;DNS:.example.internal'), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints\.permitted\.dns\[0\] '\.example\.internal' reaches '\*\.prod\.example\.internal', which .* denies/,
  );
  assertError(
    t,
    await byCsr(policedId, 'ca-outside', caCsr('outside', 'permitted;DNS:.svc.cluster.local,permitted;URI:evil.example'), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints\.permitted\.uri\[0\] 'evil\.example' reaches names that .* does not allow/,
  );
  // A type the policy limits and the CA leaves open lets the CA sign any name of it: each must be constrained.
  const dnsAndUri = 'permitted;DNS:.example.internal,excluded;DNS:.prod.example.internal,permitted;URI:cluster.local';
  assertError(
    t,
    await byCsr(policedId, 'ca-open-ip', caCsr('open-ip', dnsAndUri), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints must constrain IP names: the issuing CA's issuance policy allows only 10\.0\.0\.0\/8; permit subtrees within them/,
  );
  assertError(
    t,
    await byCsr(policedId, 'ca-open-email', caCsr('open-email', `${dnsAndUri},permitted;IP:10.1.0.0/255.255.0.0`), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints must constrain EMAIL names: the issuing CA's issuance policy allows none; permit only '\.invalid'/,
  );
  assertError(
    t,
    await byCsr(
      policedId,
      'ca-wide-ip',
      caCsr('wide-ip', `${dnsAndUri},permitted;IP:0.0.0.0/0.0.0.0,permitted;email:.invalid`),
      intermediate,
    ),
    400,
    'PCA.00020001',
    /csr nameConstraints\.permitted\.ip\[0\] '0\.0\.0\.0\/0' reaches names that .* does not allow \(allowed ip: 10\.0\.0\.0\/8\)/,
  );
  const good = await byCsr(
    policedId,
    'ca-good',
    caCsr('good', `${dnsAndUri},permitted;IP:10.1.0.0/255.255.0.0,permitted;email:.invalid`),
    intermediate,
  );
  t.equal(good.status, 200, JSON.stringify(good.body));
  const exported = await api.call('POST', `${CA}/${good.body.certificate_id}/export`);
  const text = await certificateText(dir, exported.body.certificate);
  t.match(
    text,
    /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.example\.internal\s+IP:10\.1\.0\.0\/255\.255\.0\.0\s+URI:cluster\.local\s+email:\.invalid\s+Excluded:\s+DNS:\.prod\.example\.internal/,
    'copied from the CSR, critical',
  );
  t.same((await api.show(good.body.certificate_id)).name_constraints, {
    permitted: { dns: ['.example.internal'], ip: ['10.1.0.0/16'], uri: ['cluster.local'], email: ['.invalid'] },
    excluded: { dns: ['.prod.example.internal'], ip: [], uri: [], email: [] },
  });

  // Subordinate creation through the API and §10.9 server-made intermediates go through the same evaluator.
  const subordinate = (overrides: Json) =>
    api.call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: policedId,
      distinguished_name: { ...DN, common_name: 'child' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 30 },
      path_length: 1,
      ...overrides,
    });
  assertError(t, await subordinate({}), 400, 'PCA.00020001', /name_constraints must permit at least one subtree/);
  assertError(
    t,
    await subordinate({ name_constraints: { permitted: { dns: ['.svc.cluster.local'] } }, validity: { type: 'DAY', value: 100 } }),
    400,
    'PCA.00020001',
    /validity exceeds the 90 days/,
  );
  assertError(
    t,
    await subordinate({ name_constraints: { permitted: { dns: ['.svc.cluster.local'] } }, key_algorithm: 'EC384' }),
    400,
    'PCA.00020001',
    /key algorithm EC384/,
  );
  assertError(
    t,
    await subordinate({ name_constraints: { permitted: { dns: ['.svc.cluster.local'], ip: ['10.1.0.0/16'] } } }),
    400,
    'PCA.00020001',
    /name_constraints must constrain URI names: .* allows only spiffe:\/\/cluster\.local\/\*; permit subtrees within them/,
  );
  const everyType = { dns: ['.svc.cluster.local'], ip: ['10.1.0.0/16'], uri: ['cluster.local'], email: ['.invalid'] };
  const child = await subordinate({ name_constraints: { permitted: everyType } });
  t.equal(child.status, 200, JSON.stringify(child.body));
  t.same((await api.show(child.body.ca_id)).name_constraints?.permitted, everyType);
  const intermediateRequest = {
    distinguished_name: { common_name: 'istio-ca' },
    type: 'INTERMEDIATE_CA',
    path_length: 0,
    extended_key_usage: {},
  };
  assertError(t, await serverMade(policedId, intermediateRequest), 400, 'PCA.00020001', /name_constraints must permit/);
  assertError(
    t,
    await serverMade(policedId, { ...intermediateRequest, name_constraints: { permitted: { dns: ['.svc.cluster.local'] } } }),
    400,
    'PCA.00020001',
    /name_constraints must constrain IP names/,
  );
  const made = await serverMade(policedId, { ...intermediateRequest, name_constraints: { permitted: everyType } });
  t.equal(made.status, 200, JSON.stringify(made.body));
  const madeText = await certificateText(
    dir,
    (await api.call('POST', `${CERT}/${made.body.certificate_id}/export`, { type: 'OTHER' })).body.certificate,
  );
  t.match(madeText, /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.svc\.cluster\.local/);
  assertError(
    t,
    await serverMade(policedId, { name_constraints: { permitted: { dns: ['.svc.cluster.local'] } } }),
    400,
    'PCA.00020001',
    /name_constraints applies to type INTERMEDIATE_CA only/,
  );
});

t.test('require_name_constraints_for_cas with only denied names: each denied name is left out of what the CA permits', async (t) => {
  const denyingId = await api.subordinate(rootId, { path_length: 1, distinguished_name: { ...DN, common_name: 'denying' } });
  t.equal(
    (await put(denyingId, { denied: { dns: ['*.prod.example.internal'], ip: ['10.9.0.0/16'] }, require_name_constraints_for_cas: true }))
      .status,
    200,
  );
  const intermediate = { type: 'INTERMEDIATE_CA', path_length: 0 };
  const dnsOnly = 'permitted;DNS:.example.internal,excluded;DNS:.prod.example.internal';
  assertError(
    t,
    await byCsr(denyingId, 'deny-open-ip', caCsr('deny-open-ip', dnsOnly), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints permits every IP name, so it reaches '10\.9\.0\.0\/16', which .* denies; exclude it/,
  );
  // An exclusion covering part of the denied range is not enough.
  assertError(
    t,
    await byCsr(denyingId, 'deny-half-ip', caCsr('deny-half-ip', `${dnsOnly},excluded;IP:10.9.0.0/255.255.128.0`), intermediate),
    400,
    'PCA.00020001',
    /reaches '10\.9\.0\.0\/16'/,
  );
  // Excluding 10/8 alone leaves ::ffff:10.9.0.1, which Go matches to 10.9.0.1: the IPv4-mapped range must go too.
  assertError(
    t,
    await byCsr(denyingId, 'deny-ip-v4-only', caCsr('deny-ip-v4-only', `${dnsOnly},excluded;IP:10.0.0.0/255.0.0.0`), intermediate),
    400,
    'PCA.00020001',
    /csr nameConstraints reaches IPv4-mapped addresses \(::ffff:0:0\/96\).*exclude ::ffff:0:0\/96/,
  );
  for (const [name, ipv6] of [
    ['deny-ip-all-v6', 'permitted;IP:::/::'],
    ['deny-ip-mapped', 'permitted;IP:::ffff:0:0/ffff:ffff:ffff:ffff:ffff:ffff::'],
  ]) {
    assertError(
      t,
      await byCsr(denyingId, name, caCsr(name, `${dnsOnly},excluded;IP:10.0.0.0/255.0.0.0,${ipv6}`), intermediate),
      400,
      'PCA.00020001',
      /reaches IPv4-mapped addresses/,
    );
  }
  const excluding = await byCsr(
    denyingId,
    'deny-ip-excluded',
    caCsr('deny-ip-excluded', `${dnsOnly},excluded;IP:10.0.0.0/255.0.0.0,excluded;IP:::ffff:0:0/ffff:ffff:ffff:ffff:ffff:ffff::`),
    intermediate,
  );
  t.equal(excluding.status, 200, JSON.stringify(excluding.body));
  const permitting = await byCsr(
    denyingId,
    'deny-ip-permitted',
    caCsr('deny-ip-permitted', `${dnsOnly},permitted;IP:10.1.0.0/255.255.0.0`),
    intermediate,
  );
  t.equal(permitting.status, 200, `IP subtrees that leave the denied range out: ${JSON.stringify(permitting.body)}`);
  const everyAddress = await byCsr(
    policedId,
    'ca-no-ip',
    caCsr(
      'no-ip',
      'permitted;DNS:.svc.cluster.local,permitted;URI:cluster.local,permitted;email:.invalid,excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::',
    ),
    intermediate,
  );
  t.equal(
    everyAddress.status,
    200,
    `a CA excluding every address needs no IP subtree of the allowed ones: ${JSON.stringify(everyAddress.body)}`,
  );
});

t.test("a CA's own name constraints bind what it signs, and its children may only narrow them", async (t) => {
  const meshId = await api.subordinate(rootId, {
    path_length: 2,
    distinguished_name: { ...DN, common_name: 'mesh' },
    name_constraints: {
      permitted: { dns: ['.cluster.local'], uri: ['cluster.local'] },
      excluded: { dns: ['kube-system.svc.cluster.local'] },
    },
  });
  t.equal(
    (await serverMade(meshId, { subject_alternative_names: [{ type: 'URI', value: 'spiffe://cluster.local/ns/a/sa/b' }] })).status,
    200,
  );
  assertError(
    t,
    await serverMade(meshId, { subject_alternative_names: [{ type: 'DNS', value: 'evil.example.com' }] }),
    400,
    'PCA.00020001',
    /subject_alternative_names\[0\] DNS name 'evil\.example\.com' is outside the name constraints of the issuing CA's chain \(permitted DNS: \.cluster\.local\)/,
  );
  assertError(
    t,
    await serverMade(meshId, { subject_alternative_names: [{ type: 'DNS', value: 'kube-system.svc.cluster.local' }] }),
    400,
    'PCA.00020001',
    /excluded by the name constraints .*kube-system\.svc\.cluster\.local/,
  );
  assertError(
    t,
    await byCsr(meshId, 'mesh-evil', ['-subj', '/CN=w', '-addext', 'subjectAltName=URI:spiffe://evil.example/ns/a']),
    400,
    'PCA.00020001',
    /csr subjectAltName\[0\] URI name .* outside the name constraints/,
  );

  // A child without constraints of its own is still bound by its parent's (RFC 5280 applies the whole chain).
  const childId = await api.subordinate(meshId, {
    path_length: 1,
    distinguished_name: { ...DN, common_name: 'mesh-child' },
    validity: { type: 'MONTH', value: 6 },
  });
  assertError(
    t,
    await serverMade(childId, { subject_alternative_names: [{ type: 'DNS', value: 'evil.example.com' }] }),
    400,
    'PCA.00020001',
    /outside the name constraints of the issuing CA's chain/,
  );
  t.equal((await serverMade(childId, { subject_alternative_names: [{ type: 'DNS', value: 'a.ns.svc.cluster.local' }] })).status, 200);

  const widen = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    issuer_id: meshId,
    distinguished_name: { ...DN, common_name: 'wider' },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 30 },
    name_constraints: { permitted: { dns: ['.svc.cluster.local', '.local'] } },
  });
  assertError(
    t,
    widen,
    400,
    'PCA.00020001',
    /name_constraints\.permitted\.dns\[1\] '\.local' widens the name constraints of the issuing CA's chain \(permitted DNS: \.cluster\.local\); a CA may only narrow them/,
  );
  const { csr } = await opensslCsr(
    dir,
    'widening-csr',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=wide', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'nameConstraints=critical,permitted;URI:.example.com'],
  );
  assertError(
    t,
    await api.call('POST', `${CERT}/csr`, {
      issuer_id: meshId,
      csr,
      validity: { type: 'DAY', value: 1 },
      type: 'INTERMEDIATE_CA',
      path_length: 0,
    }),
    400,
    'PCA.00020001',
    /csr nameConstraints\.permitted\.uri\[0\] '\.example\.com' widens/,
  );

  // Activation of a PENDING subordinate created with constraints: they are kept and judged at signing.
  const pending = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'pending-narrow' },
    key_algorithm: 'EC256',
    name_constraints: { permitted: { dns: ['.a.cluster.local'] } },
  });
  t.equal(pending.status, 200);
  t.same(
    (await api.show(pending.body.ca_id)).name_constraints?.permitted.dns,
    ['.a.cluster.local'],
    'requested constraints shown while PENDING',
  );
  const csrPem = (await api.call('GET', `${CA}/${pending.body.ca_id}/csr`)).body.csr;
  const csrText = await openssl(['req', '-in', await dir.write('pending.csr', csrPem), '-noout', '-text', '-verify']);
  t.match(
    csrText.stdout,
    /Requested Extensions:\s+X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.a\.cluster\.local/,
    'the exported CSR asks an outside parent for them',
  );
  const activated = await api.call('POST', `${CA}/${pending.body.ca_id}/activate`, {
    issuer_id: meshId,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 30 },
  });
  t.equal(activated.status, 204, JSON.stringify(activated.body));
  const certificate = (await api.call('POST', `${CA}/${pending.body.ca_id}/export`)).body.certificate;
  t.match(await certificateText(dir, certificate), /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.a\.cluster\.local/);
  const widePending = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'pending-wide' },
    key_algorithm: 'EC256',
    name_constraints: { permitted: { dns: ['example.com'] } },
  });
  assertError(
    t,
    await api.call('POST', `${CA}/${widePending.body.ca_id}/activate`, {
      issuer_id: meshId,
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 30 },
    }),
    400,
    'PCA.00020001',
    /widens/,
  );
  t.equal((await api.show(widePending.body.ca_id)).status, 'PENDING', 'a refused activation changes nothing');
});

t.test('name constraints that make Go refuse the CA certificate, or that would be rewritten, are refused on every path', async (t) => {
  const refusals: [Json, RegExp][] = [
    [{ permitted: { uri: ['10.0.0.1'] } }, /name_constraints\.permitted\.uri\[0\] must be a host name .* not a URI or an IP address/],
    [{ permitted: { uri: ['10.1'] } }, /name_constraints\.permitted\.uri\[0\] must be a host name/],
    [{ permitted: { dns: ['123'] } }, /name_constraints\.permitted\.dns\[0\] must be a domain/],
    [{ excluded: { email: ['a..b@example.com'] } }, /name_constraints\.excluded\.email\[0\] must be a mailbox \(a dot-atom local part\)/],
  ];
  for (const [name_constraints, message] of refusals) {
    const created = await api.call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: rootId,
      distinguished_name: { ...DN, common_name: 'refused-constraints' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 30 },
      name_constraints,
    });
    assertError(t, created, 400, 'PCA.00020001', message);
    assertError(t, await serverMade(rootId, { type: 'INTERMEDIATE_CA', name_constraints }), 400, 'PCA.00020001', message);
  }
  const intermediate = { type: 'INTERMEDIATE_CA', path_length: 0 };
  const csrRefusals: [string, string, RegExp][] = [
    [
      'nc-uri-ip',
      'permitted;URI:10.0.0.1',
      /permitted URI name constraint '10\.0\.0\.1' must be a host name .* not a URI or an IP address/,
    ],
    ['nc-dns-numeric', 'permitted;DNS:123', /permitted DNS name constraint '123' must be a domain/],
    ['nc-email-dots', 'excluded;email:a..b@example.com', /excluded EMAIL name constraint 'a\.\.b@example\.com' must be a mailbox/],
  ];
  for (const [name, constraint, message] of csrRefusals) {
    const reqArgs = [
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      `nameConstraints=critical,${constraint}`,
    ];
    assertError(t, await byCsr(rootId, name, reqArgs, intermediate), 400, 'PCA.00020001', message);
  }
});

t.test('a PENDING subordinate stored before the stricter rules: its refused constraints named as stored, and replaceable', async (t) => {
  const pending = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'pending-older-rules' },
    key_algorithm: 'EC256',
  });
  t.equal(pending.status, 200);
  // What the earlier rules stored for a URI constraint `10.1`: Go would refuse a CA certificate carrying it.
  const stored = { permitted: { dns: [], ip: [], uri: ['10.0.0.1'], email: [] }, excluded: { dns: [], ip: [], uri: [], email: [] } };
  await harness.database.prisma.certificateAuthority.update({ where: { id: pending.body.ca_id }, data: { nameConstraints: stored } });
  const activation = { issuer_id: rootId, signature_algorithm: 'SHA256', validity: { type: 'DAY', value: 30 } };
  assertError(
    t,
    await api.call('POST', `${CA}/${pending.body.ca_id}/activate`, activation),
    400,
    'PCA.00020001',
    /^stored name_constraints\.permitted\.uri\[0\] must be .*; send name_constraints with the activation to replace them$/,
  );
  const replaced = await api.call('POST', `${CA}/${pending.body.ca_id}/activate`, {
    ...activation,
    name_constraints: { permitted: { uri: ['.cluster.local'] } },
  });
  t.equal(replaced.status, 204, JSON.stringify(replaced.body));
  t.same((await api.show(pending.body.ca_id)).name_constraints?.permitted.uri, ['.cluster.local']);
});

t.test('under URI exclusions alone, a URI with an IP-literal host is refused like a host-less one (RFC 5280 §4.2.1.10)', async (t) => {
  const guardedId = await api.subordinate(rootId, {
    distinguished_name: { ...DN, common_name: 'uri-excluding' },
    name_constraints: { excluded: { uri: ['bad.example'] } },
  });
  const uri = (value: string) => serverMade(guardedId, { subject_alternative_names: [{ type: 'URI', value }] });
  t.equal((await uri('spiffe://cluster.local/ns/a/sa/b')).status, 200, 'a host name outside the exclusion is issued');
  assertError(t, await uri('spiffe://bad.example/ns/a'), 400, 'PCA.00020001', /excluded URI 'bad\.example'/);
  for (const value of ['https://10.1.2.3/x', 'https://[2001:db8::1]/', 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66']) {
    const quoted = value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    assertError(
      t,
      await uri(value),
      400,
      'PCA.00020001',
      new RegExp(`URI name '${quoted}' is excluded by the name constraints of the issuing CA's chain \\(excluded URI 'bad\\.example'\\)`),
    );
  }
  assertError(
    t,
    await byCsr(guardedId, 'uri-ip-excluded', ['-subj', '/CN=w', '-addext', 'subjectAltName=URI:https://10.1.2.3/x']),
    400,
    'PCA.00020001',
    /csr subjectAltName\[0\] URI name 'https:\/\/10\.1\.2\.3\/x' is excluded/,
  );
});

t.test('an imported CA certificate with name constraints the service cannot honour is refused as such', async (t) => {
  const pending = await api.call('POST', CA, {
    type: 'SUBORDINATE',
    distinguished_name: { ...DN, common_name: 'imported' },
    key_algorithm: 'EC256',
  });
  const csrFile = await dir.write('imported.csr', (await api.call('GET', `${CA}/${pending.body.ca_id}/csr`)).body.csr);
  const outsideKey = dir.file('outside-root.key');
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    outsideKey,
    '-subj',
    '/CN=outside-root',
    '-days',
    '30',
    '-out',
    dir.file('outside-root.pem'),
  ]);
  const sign = async (name: string, constraints: string) => {
    const ext = await dir.write(
      `${name}.ext`,
      `basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nnameConstraints=critical,${constraints}\n`,
    );
    const signed = await openssl([
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      dir.file('outside-root.pem'),
      '-CAkey',
      outsideKey,
      '-set_serial',
      '7',
      '-days',
      '10',
      '-extfile',
      ext,
      '-out',
      dir.file(`${name}.pem`),
    ]);
    if (!signed.ok) throw new Error(signed.stderr);
    return (await dir.read(`${name}.pem`)).toString();
  };
  const chain = (await dir.read('outside-root.pem')).toString();
  const refused = await api.call('POST', `${CA}/${pending.body.ca_id}/import`, {
    certificate: await sign('imported-other-name', 'permitted;DNS:.a.example,excluded;otherName:1.2.3.4;UTF8:x'),
    certificate_chain: chain,
  });
  assertError(t, refused, 400, 'PCA.00020001', /excluded otherName name constraints are not supported/);
  const imported = await api.call('POST', `${CA}/${pending.body.ca_id}/import`, {
    certificate: await sign('imported-dns', 'permitted;DNS:.a.example'),
    certificate_chain: chain,
  });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.same(
    (await api.show(pending.body.ca_id)).name_constraints?.permitted.dns,
    ['.a.example'],
    "the imported certificate's constraints are shown",
  );
  assertError(
    t,
    await serverMade(pending.body.ca_id, {
      subject_alternative_names: [{ type: 'DNS', value: 'b.example' }],
      validity: { type: 'DAY', value: 1 },
    }),
    400,
    'PCA.00020001',
    /outside the name constraints/,
  );
});

t.test('refusals on the policy resource itself: CSR-issued and DELETED CAs', async (t) => {
  const csrCa = await harness.database.prisma.certificateAuthority.findFirstOrThrow({ where: { genMode: 'CSR' } });
  assertError(t, await put(csrCa.id, { max_validity_days: 1 }), 400, 'PCA.00020001', /not possible for a CA issued from a CSR/);
  const doomed = await api.root({ distinguished_name: { ...DN, common_name: 'doomed' } });
  await api.call('POST', `${CA}/${doomed}/disable`);
  t.equal((await api.call('DELETE', `${CA}/${doomed}?pending_days=7`)).status, 204);
  assertError(t, await put(doomed, { max_validity_days: 1 }), 400, 'PCA.00020001', /not possible in status DELETED/);
});

t.test("an entity CSR's name constraints are ignored, whatever their forms; a CA's are refused when unsupported", async (t) => {
  const constraints = ['-addext', 'nameConstraints=critical,permitted;dirName:dir_sect', '-addext', 'subjectAltName=DNS:app.example'];
  const config = await dir.write('dir-name.cnf', '[dir_sect]\nCN = example\n');
  const args = ['-subj', '/CN=app.example', '-config', config, ...constraints];
  const entity = await byCsr(rootId, 'entity-dir-name', args);
  t.equal(entity.status, 200, JSON.stringify(entity.body));
  const exported = await api.call('POST', `${CERT}/${entity.body.certificate_id}/export`, { type: 'OTHER' });
  const text = await certificateText(dir, exported.body.certificate);
  t.notMatch(text, /Name Constraints/, 'not carried');
  assertError(
    t,
    await byCsr(rootId, 'ca-dir-name', [...args, '-addext', 'basicConstraints=critical,CA:TRUE'], {
      type: 'INTERMEDIATE_CA',
      path_length: 0,
    }),
    400,
    'PCA.00020001',
    /permitted directoryName name constraints are not supported/,
  );
});
