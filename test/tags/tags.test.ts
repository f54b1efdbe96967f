/**
 * Tags and resource instances (§4.3) for CAs and certificates over HTTP: single and batch writes, deletes by
 * key, per-resource and domain reads, the filter (keys ANDed, values ORed, name match, paging) and count,
 * tag rules, existence and state rules.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { OTHER_DOMAIN, createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';

const CERT = '/v1/private-certificates';
const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const prisma = harness.database.prisma;

const root = await api.root({ distinguished_name: { ...DN, common_name: 'tag-root' } });
const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'tag-sub' } });

/** A certificate row of the caller's domain (the certificate service's own tests cover issuance). */
async function certificate(commonName: string | null, deleted = false): Promise<string> {
  const id = randomUUID();
  const now = new Date();
  await prisma.certificate.create({
    data: {
      id,
      domainId: harness.config.defaultDomainId,
      issuerId: sub,
      status: 'ISSUED',
      genMode: 'CSR',
      keyAlgorithm: 'EC256',
      signatureAlgorithm: 'SHA384',
      commonName,
      serialNumber: randomUUID().replace(/-/g, ''),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      certificateDer: new Uint8Array([0x30, 0]),
      deletedAt: deleted ? now : null,
    },
  });
  return id;
}

for (const kind of ['CA', 'CERTIFICATE'] as const) {
  t.test(`${kind}: write, read, replace, delete by key`, async (t) => {
    const prefix = kind === 'CA' ? CA : CERT;
    const id =
      kind === 'CA' ? await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'tagged' } }) : await certificate('tagged');
    t.equal((await call('POST', `${prefix}/${id}/tags`, { tag: { key: 'env', value: 'prod' } })).status, 204);
    t.equal(
      (
        await call('POST', `${prefix}/${id}/tags/create`, {
          tags: [
            { key: 'team', value: 'mesh' },
            { key: 'env', value: 'staging' },
            { key: '中文 key', value: 'a/b' },
          ],
        })
      ).status,
      204,
    );
    t.same((await call('GET', `${prefix}/${id}/tags`)).body, {
      tags: [
        { key: 'env', value: 'staging' },
        { key: 'team', value: 'mesh' },
        { key: '中文 key', value: 'a/b' },
      ],
    });
    t.equal(
      (
        await call('DELETE', `${prefix}/${id}/tags/delete`, {
          tags: [
            { key: 'team', value: 'ignored' },
            { key: 'absent', value: '' },
          ],
        })
      ).status,
      204,
    );
    t.same(
      (await call('GET', `${prefix}/${id}/tags`)).body.tags.map((tag: Json) => tag.key),
      ['env', '中文 key'],
    );
    t.same(
      (await call('GET', `${prefix}/tags`)).body.tags.find((tag: Json) => tag.key === 'env'),
      { key: 'env', values: ['staging'] },
    );
    assertError(t, await call('GET', `${prefix}/${id}/tags`, undefined, OTHER_DOMAIN), 404, 'PCA.10010002');
    const missing = kind === 'CA' ? randomUUID() : await certificate('gone', true);
    assertError(t, await call('POST', `${prefix}/${missing}/tags`, { tag: { key: 'k', value: 'v' } }), 404, 'PCA.10010002');
    assertError(t, await call('GET', `${prefix}/not-an-id/tags`), 400, kind === 'CA' ? 'PCA.00020201' : 'PCA.10010105');
  });
}

t.test('tag rules: characters, lengths, duplicates, 20 per resource', async (t) => {
  const cases: [string, Json][] = [
    ['key with /', { tags: [{ key: 'a/b', value: 'v' }] }],
    ['empty key', { tags: [{ key: '', value: 'v' }] }],
    ['key of 129', { tags: [{ key: 'k'.repeat(129), value: 'v' }] }],
    ['value of 256', { tags: [{ key: 'k', value: 'v'.repeat(256) }] }],
    ['value with !', { tags: [{ key: 'k', value: 'bad!' }] }],
    [
      'duplicate keys',
      {
        tags: [
          { key: 'k', value: '1' },
          { key: 'k', value: '2' },
        ],
      },
    ],
  ];
  for (const [label, body] of cases) {
    await t.test(label, async (t) => assertError(t, await call('POST', `${CA}/${sub}/tags/create`, body), 400, 'PCA.00020001'));
  }
  const many = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: '' }));
  const full = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'full' } });
  t.equal((await call('POST', `${CA}/${full}/tags/create`, { tags: many })).status, 204);
  assertError(t, await call('POST', `${CA}/${full}/tags`, { tag: { key: 'one-more', value: '' } }), 400, 'PCA.00020001', /20/);
  t.equal((await call('POST', `${CA}/${full}/tags`, { tag: { key: 'k3', value: 'replaced' } })).status, 204, 'replacing stays within 20');
});

t.test('CA tag writes: not while DELETED, not on CSR-issued CAs; reads in every status; URN accepted', async (t) => {
  const id = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'deleted-tagged' } });
  await call('POST', `${CA}/${id}/tags`, { tag: { key: 'keep', value: 'me' } });
  await call('POST', `${CA}/${id}/disable`);
  await call('DELETE', `${CA}/${id}`);
  assertError(t, await call('POST', `${CA}/${id}/tags`, { tag: { key: 'k', value: 'v' } }), 400, 'PCA.00020001', /DELETED/);
  t.same((await call('GET', `${CA}/${id}/tags`)).body, { tags: [{ key: 'keep', value: 'me' }] });
  const urn = `pca:cn-north-4:${harness.config.defaultDomainId}:ca:${sub}`;
  t.equal((await call('POST', `${CA}/${urn}/tags`, { tag: { key: 'via', value: 'urn' } })).status, 204);
  t.same((await call('GET', `${CA}/${sub}/tags`)).body.tags, [{ key: 'via', value: 'urn' }]);

  // §4.4.2: a CSR-issued CA answers show, export and revoke only, its tags neither written nor read.
  const { csr } = await opensslCsr(
    await scratch('tags'),
    'csr-ca',
    [...KEY_ARGS.p256],
    ['-subj', '/CN=csr-ca', '-addext', 'basicConstraints=critical,CA:TRUE'],
  );
  const csrCa = await call('POST', `${CERT}/csr`, {
    issuer_id: root,
    csr,
    type: 'INTERMEDIATE_CA',
    path_length: 0,
    validity: { type: 'DAY', value: 30 },
  });
  t.equal(csrCa.status, 200, JSON.stringify(csrCa.body));
  assertError(t, await call('GET', `${CA}/${csrCa.body.certificate_id}/tags`), 400, 'PCA.00020001', /a CA issued from a CSR has no tags/);
  assertError(t, await call('POST', `${CA}/${csrCa.body.certificate_id}/tags`, { tag: { key: 'k', value: 'v' } }), 400, 'PCA.00020001');
});

t.test('resource instances: keys ANDed, values ORed, [] any value, name match, paging, count', async (t) => {
  const domain = 'tagfilter000000000000000000000001';
  const make = async (name: string, tags: Json[]) => {
    const id = await api.root({ distinguished_name: { ...DN, common_name: name } }, domain);
    if (tags.length > 0) await call('POST', `${CA}/${id}/tags/create`, { tags }, domain);
    return id;
  };
  const a = await make('alpha', [
    { key: 'env', value: 'prod' },
    { key: 'team', value: 'mesh' },
  ]);
  const b = await make('beta', [
    { key: 'env', value: 'dev' },
    { key: 'team', value: 'mesh' },
  ]);
  const c = await make('gamma', [{ key: 'env', value: 'test' }]);
  await make('delta', []);
  const filter = (body: Json) => call('POST', `${CA}/resource-instances/filter`, body, domain).then((r) => r.body);
  const count = (body: Json) => call('POST', `${CA}/resource-instances/count`, body, domain).then((r) => r.body.total_count);
  const ids = (body: Json) => body.resources.map((r: Json) => r.resource_id).sort();

  t.same(ids(await filter({ tags: [{ key: 'env', values: ['prod', 'dev'] }] })), [a, b].sort(), 'values ORed');
  t.same(
    ids(
      await filter({
        tags: [
          { key: 'env', values: [] },
          { key: 'team', values: ['mesh'] },
        ],
      }),
    ),
    [a, b].sort(),
    'keys ANDed, [] any value',
  );
  t.same(
    ids(
      await filter({
        tags: [
          { key: 'env', values: ['test'] },
          { key: 'team', values: [] },
        ],
      }),
    ),
    [],
    'gamma has no team',
  );
  t.equal(await count({}), 4, 'no tags: everything');
  t.equal(await count({ tags: [{ key: 'env', values: [] }] }), 3);
  t.equal(await count({ matches: [{ key: 'resource_name', value: 'AMM' }] }), 1, 'case-insensitive name match');
  const one = await filter({ tags: [{ key: 'env', values: ['test'] }] });
  t.equal(one.total_count, 1);
  t.match(one.resources[0], {
    resource_id: c,
    resource_name: 'gamma',
    resource_detail: { ca_id: c, status: 'ACTIVED', urn: String },
    tags: [{ key: 'env', value: 'test' }],
  });
  const page = await filter({ limit: 10, offset: 3 });
  t.equal(page.total_count, 4);
  t.equal(page.resources.length, 1);
  // Every field is optional: no body, or a Go client's nil Body sent as null, filters nothing.
  for (const path of ['filter', 'count']) {
    for (const payload of [undefined, null]) {
      const everything = await call('POST', `${CA}/resource-instances/${path}`, payload, domain);
      t.equal(everything.status, 200, `${path} with ${payload === undefined ? 'no body' : 'null'}: ${JSON.stringify(everything.body)}`);
      t.equal(everything.body.total_count, 4);
    }
  }
  assertError(
    t,
    await call(
      'POST',
      `${CA}/resource-instances/filter`,
      {
        matches: [
          { key: 'resource_name', value: 'zzz' },
          { key: 'resource_name', value: 'gamma' },
        ],
      },
      domain,
    ),
    400,
    'PCA.00020001',
    /matches\[1\]\.key 'resource_name' appears twice/,
  );
  assertError(t, await call('POST', `${CA}/resource-instances/filter`, { limit: 15 }, domain), 400, 'PCA.00020001');
  assertError(t, await call('POST', `${CA}/resource-instances/filter`, { tags: [{ key: 'env' }] }, domain), 400, 'PCA.00020001');
  assertError(
    t,
    await call('POST', `${CA}/resource-instances/count`, { matches: [{ key: 'serial', value: 'x' }] }, domain),
    400,
    'PCA.00020001',
  );

  const underscored = await make('under_score', []);
  const named = async (value: string) => ids(await filter({ matches: [{ key: 'resource_name', value }] }));
  t.same(await named('_'), [underscored], "'_' matches itself, not any character");
  t.same(await named('%'), [], "'%' matches itself, not anything");
  t.same(await named('R_S'), [underscored]);
  t.same(await named('\\'), [], 'a backslash is a character too');
  assertError(
    t,
    await call('POST', `${CA}/resource-instances/count`, { matches: [{ key: 'resource_name', value: 'A'.repeat(256) }] }, domain),
    400,
    'PCA.00020001',
    /more than 255 characters/,
  );
  t.equal(await count({ matches: [{ key: 'resource_name', value: 'A'.repeat(255) }] }), 0, '255 characters are searched for');

  const cert = await certificate('cert-filtered');
  await call('POST', `${CERT}/${cert}/tags`, { tag: { key: 'app', value: 'web' } });
  const certs = (await call('POST', `${CERT}/resource-instances/filter`, { tags: [{ key: 'app', values: ['web'] }] })).body;
  t.match(certs, {
    total_count: 1,
    resources: [{ resource_id: cert, resource_name: 'cert-filtered', resource_detail: { certificate_id: cert, issuer_name: 'tag-sub' } }],
  });
  t.equal(
    (await call('POST', `${CERT}/resource-instances/count`, {})).body.total_count,
    await prisma.certificate.count({ where: { deletedAt: null } }),
  );
});

t.test('resource instances: a resource without a common name is listed with resource_name null (§2), not ""', async (t) => {
  const ordered = await api.order({ period_type: 2, period_num: 1, is_auto_renew: 0 });
  t.equal((await call('POST', `${CA}/${ordered}/tags`, { tag: { key: 'unnamed', value: 'ca' } })).status, 204);
  const cas = await call('POST', `${CA}/resource-instances/filter`, { tags: [{ key: 'unnamed', values: ['ca'] }] });
  t.equal(cas.status, 200);
  t.same(
    cas.body.resources.map((r: Json) => [r.resource_id, r.resource_name, r.resource_detail.distinguished_name]),
    [[ordered, null, null]],
    'an ordered CA not set up yet: no common name, so null',
  );
  t.ok('resource_name' in cas.body.resources[0], 'the field is present');

  const cert = await certificate(null);
  t.equal((await call('POST', `${CERT}/${cert}/tags`, { tag: { key: 'unnamed', value: 'cert' } })).status, 204);
  const certs = await call('POST', `${CERT}/resource-instances/filter`, { tags: [{ key: 'unnamed', values: ['cert'] }] });
  t.equal(certs.status, 200);
  t.same(
    certs.body.resources.map((r: Json) => [r.resource_id, r.resource_name]),
    [[cert, null]],
    'a certificate without a common name: null too',
  );
});
