/**
 * `enterprise_project_id` on every body that takes it. CA create and activate (§4.2.1, §4.2.4) take "`0` (default), a
 * UUID, or `all`": any other string is a 400 PCA.00020001 naming the field. A CA order and certificate issuance with a
 * server key or from a CSR (§4.2.2, §4.4.1, §4.4.2) say only "Stored": any string of at most 64 characters is stored
 * and echoed as sent (an empty one, as a Go SDK may send, is the default "0"), a longer one refused.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { CA, DN, MONTHLY_ORDER, assertError, client } from './support.ts';

const CERT = '/v1/private-certificates';
const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;

const root = await api.root({ distinguished_name: { ...DN, common_name: 'epid-root' } });
const sub = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'epid-sub' } });

const UPPER_UUID = '0A1B2C3D-4E5F-4A7B-8C9D-0E1F2A3B4C5D';
const REFUSED = [
  '',
  '1',
  '00',
  'ALL',
  'all ',
  ' 0',
  'default',
  'project-1',
  '0a1b2c3d4e5f4a7b8c9d0e1f2a3b4c5d',
  `${UPPER_UUID}x`,
  'x'.repeat(36),
];
const FIELD = /^enterprise_project_id /;

const rootBody = (extra: Record<string, unknown>) => ({
  type: 'ROOT',
  distinguished_name: { ...DN, common_name: 'epid-created' },
  key_algorithm: 'EC256',
  signature_algorithm: 'SHA256',
  validity: { type: 'YEAR', value: 1 },
  ...extra,
});
const orderBody = (extra: Record<string, unknown>) => ({ ...MONTHLY_ORDER, ...extra });
const certificateBody = (extra: Record<string, unknown>) => ({
  issuer_id: sub,
  distinguished_name: { common_name: 'epid.example.com' },
  validity: { type: 'DAY', value: 1 },
  ...extra,
});
const { csr } = await opensslCsr(await scratch('epid'), 'epid-csr', [...KEY_ARGS.p256]);
const csrBody = (extra: Record<string, unknown>) => ({ issuer_id: sub, csr, validity: { type: 'DAY', value: 1 }, ...extra });

t.test('CA create and activate refuse any other value with 400 PCA.00020001 naming the field', async (t) => {
  const pending = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'epid-pending' }, validity: undefined });
  t.equal((await api.show(pending)).status, 'PENDING');
  const bodies: [string, string, (extra: Record<string, unknown>) => unknown][] = [
    ['create CA', CA, rootBody],
    [
      'activate',
      `${CA}/${pending}/activate`,
      (extra) => ({ issuer_id: root, signature_algorithm: 'SHA256', validity: { type: 'DAY', value: 30 }, ...extra }),
    ],
  ];
  for (const [name, url, body] of bodies) {
    for (const value of REFUSED) {
      assertError(t, await call('POST', url, body({ enterprise_project_id: value })), 400, 'PCA.00020001', FIELD);
    }
    assertError(t, await call('POST', url, body({ enterprise_project_id: 0 })), 400, 'PCA.00020001', FIELD);
    t.comment(`${name}: ${REFUSED.length + 1} values refused`);
  }
  t.equal((await api.show(pending)).status, 'PENDING', 'the refused activations changed nothing');
});

t.test('a CA order and certificate issuance store any string of at most 64 characters as sent', async (t) => {
  // An empty string names no project: the default one, as when the field is left out.
  for (const [value, stored] of [
    ['', '0'],
    ['default', 'default'],
    ['project-1', 'project-1'],
    ['x'.repeat(64), 'x'.repeat(64)],
  ]) {
    const issued = await call('POST', CERT, certificateBody({ enterprise_project_id: value }));
    t.equal(issued.status, 200, JSON.stringify(issued.body));
    t.equal((await call('GET', `${CERT}/${issued.body.certificate_id}`)).body.enterprise_project_id, stored, `certificate "${value}"`);
    const fromCsr = await call('POST', `${CERT}/csr`, csrBody({ enterprise_project_id: value }));
    t.equal(fromCsr.status, 200, JSON.stringify(fromCsr.body));
    t.equal((await call('GET', `${CERT}/${fromCsr.body.certificate_id}`)).body.enterprise_project_id, stored, `CSR "${value}"`);
  }
  const ordered = await call('POST', `${CA}/order`, orderBody({ enterprise_project_id: 'project-1' }));
  t.equal(ordered.status, 200, JSON.stringify(ordered.body));
  t.equal((await api.show(ordered.body.ca_ids[0])).enterprise_project_id, 'project-1', 'an ordered CA keeps it');
  for (const [name, url, body] of [
    ['order', `${CA}/order`, orderBody],
    ['issue', CERT, certificateBody],
    ['issue from a CSR', `${CERT}/csr`, csrBody],
  ] as const) {
    assertError(t, await call('POST', url, body({ enterprise_project_id: 'x'.repeat(65) })), 400, 'PCA.00020001', FIELD);
    t.comment(`${name}: 65 characters refused`);
  }
});

t.test('"0", "all" and a UUID in either case are accepted, stored and echoed', async (t) => {
  for (const value of ['0', 'all', UPPER_UUID, UPPER_UUID.toLowerCase()]) {
    const created = await call('POST', CA, rootBody({ enterprise_project_id: value }));
    t.equal(created.status, 200, JSON.stringify(created.body));
    t.equal((await api.show(created.body.ca_id)).enterprise_project_id, value, `CA ${value}`);

    const issued = await call('POST', CERT, certificateBody({ enterprise_project_id: value }));
    t.equal(issued.status, 200, JSON.stringify(issued.body));
    const shown = await call('GET', `${CERT}/${issued.body.certificate_id}`);
    t.equal(shown.body.enterprise_project_id, value, `certificate ${value}`);

    const fromCsr = await call('POST', `${CERT}/csr`, csrBody({ enterprise_project_id: value }));
    t.equal(fromCsr.status, 200, JSON.stringify(fromCsr.body));
    t.equal((await call('GET', `${CERT}/${fromCsr.body.certificate_id}`)).body.enterprise_project_id, value, `CSR ${value}`);
  }
  const ordered = await call('POST', `${CA}/order`, orderBody({ enterprise_project_id: UPPER_UUID }));
  t.equal(ordered.status, 200, JSON.stringify(ordered.body));
  t.equal((await api.show(ordered.body.ca_ids[0])).enterprise_project_id, UPPER_UUID, 'an ordered CA keeps it');

  const pending = await api.subordinate(root, { distinguished_name: { ...DN, common_name: 'epid-activated' }, validity: undefined });
  const activated = await call('POST', `${CA}/${pending}/activate`, {
    issuer_id: root,
    signature_algorithm: 'SHA256',
    validity: { type: 'DAY', value: 30 },
    enterprise_project_id: 'all',
  });
  t.equal(activated.status, 204, JSON.stringify(activated.body));
  t.equal((await api.show(pending)).enterprise_project_id, 'all', 'activate stores it');
  t.equal((await api.show(await api.root())).enterprise_project_id, '0', 'left out, it is "0"');
});
