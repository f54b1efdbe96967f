/**
 * Import (§4.2.5) checks the supplied chain as a certification path: each issuer is a CA allowed to sign certificates
 * and names its child, no certificate is repeated, every certificate is valid on the service clock, and the parents'
 * path lengths are enforced and inherited (RFC 5280 §6.1.4 (l)(m)). Every refusal names the entry and the rule, and
 * leaves the CA PENDING and unbilled. The external hierarchies are made by openssl.
 */
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import type { Clock } from '../../src/clock.ts';
import type { KeyStores } from '../../src/keystore/index.ts';
import { createTestApp } from '../helpers/app.ts';
import { openssl, runOpenssl } from '../x509/fixtures/openssl-pki.ts';
import { CA, DN, assertError, client, issueLeaf, opensslDir, signedByServiceCa, verifyWithChain, type Json } from './support.ts';

/** The real time moved by `offset` ms: the service judges validity by its clock, not by Date.now(). */
let offset = 0;
const clock: Clock = { now: () => new Date(Date.now() + offset) };
let keyStores!: KeyStores;
const harness = await createTestApp({ clock, wrapKeyStores: (stores) => (keyStores = stores) });
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const { prisma } = harness.database;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const CA_EXT = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
const OUR_CA_EXT = ['basicConstraints=critical,CA:TRUE,pathlen:1', 'keyUsage=critical,digitalSignature,keyCertSign,cRLSign'];
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const ED25519 = ['-newkey', 'ed25519'];

interface Issuer {
  pem: string;
  certPath: string;
  keyPath: string;
  /** Ed25519 takes no digest option. */
  digest: string[];
}

/** An external PKI in a temp folder: roots, intermediates and the certificates they sign, all by openssl. */
async function externalPki(t: Test) {
  const files = await opensslDir(t);
  let count = 0;
  /** A fresh path stem in the folder: `${stem}.pem`, `${stem}.key`, … */
  const next = (name: string) => `${files.dir}/${name}-${++count}`;
  const write = (path: string, text: string) => files.write(path.slice(files.dir.length + 1), text);

  async function root(name: string, extensions = CA_EXT, keyArgs = EC): Promise<Issuer> {
    const stem = next('root');
    await openssl([
      'req',
      '-x509',
      ...keyArgs,
      '-nodes',
      '-keyout',
      `${stem}.key`,
      '-out',
      `${stem}.pem`,
      '-days',
      '3650',
      '-subj',
      `/CN=${name}`,
      ...extensions.flatMap((extension) => ['-addext', extension]),
    ]);
    const digest = keyArgs === ED25519 ? [] : ['-sha256'];
    return { pem: await readFile(`${stem}.pem`, 'utf8'), certPath: `${stem}.pem`, keyPath: `${stem}.key`, digest };
  }

  /**
   * `issuer` signs `csrPem` with exactly `extensions` (plus key identifiers: no authority key identifier under an issuer
   * without a subject key identifier, a v1 root), valid from now for `days`.
   */
  async function sign(issuer: Issuer, csrPem: string, extensions: string[], days = 365, withAuthorityKeyId = true): Promise<string> {
    const stem = next('signed');
    await write(`${stem}.csr`, csrPem);
    const keyIds = ['subjectKeyIdentifier=hash', ...(withAuthorityKeyId ? ['authorityKeyIdentifier=keyid'] : [])];
    await write(`${stem}.cnf`, [...extensions, ...keyIds].join('\n'));
    await openssl([
      'x509',
      '-req',
      '-in',
      `${stem}.csr`,
      '-CA',
      issuer.certPath,
      '-CAkey',
      issuer.keyPath,
      '-set_serial',
      String(Date.now() * 100 + count),
      '-days',
      String(days),
      ...issuer.digest,
      '-extfile',
      `${stem}.cnf`,
      '-out',
      `${stem}.pem`,
    ]);
    return readFile(`${stem}.pem`, 'utf8');
  }

  /** A key and CSR named `/CN=name`; `keyPath` reuses a key (two certificates for one key). */
  async function request(name: string, keyPath?: string): Promise<{ csrPem: string; keyPath: string }> {
    const stem = next('req');
    const key = keyPath ?? `${stem}.key`;
    const keyArgs = keyPath ? ['-key', keyPath] : [...EC, '-nodes', '-keyout', key];
    await openssl(['req', '-new', ...keyArgs, '-subj', `/CN=${name}`, '-out', `${stem}.csr`]);
    return { csrPem: await readFile(`${stem}.csr`, 'utf8'), keyPath: key };
  }

  /** A version 1 certificate named `/CN=name` (no extensions): self-signed, or signed by `issuer`. */
  async function v1(name: string, issuer?: Issuer): Promise<Issuer> {
    const { csrPem, keyPath } = await request(name);
    const stem = next('v1');
    await write(`${stem}.csr`, csrPem);
    const signer = issuer
      ? ['-CA', issuer.certPath, '-CAkey', issuer.keyPath, '-set_serial', String(Date.now() * 100 + count)]
      : ['-signkey', keyPath];
    await openssl(['x509', '-req', '-in', `${stem}.csr`, ...signer, '-days', '3650', '-out', `${stem}.pem`]);
    return { pem: await readFile(`${stem}.pem`, 'utf8'), certPath: `${stem}.pem`, keyPath, digest: ['-sha256'] };
  }

  /** An intermediate CA named `/CN=name` under `issuer`. */
  async function intermediate(issuer: Issuer, name: string, extensions = CA_EXT, options: { days?: number; keyPath?: string } = {}) {
    const { csrPem, keyPath } = await request(name, options.keyPath);
    const pem = await sign(issuer, csrPem, extensions, options.days);
    const certPath = await write(`${next('int')}.pem`, pem);
    return { pem, certPath, keyPath, digest: ['-sha256'] } satisfies Issuer;
  }

  /** An intermediate whose validity starts at `notBefore` (openssl 3.0's x509 command always starts now). */
  async function futureIntermediate(issuer: Issuer, name: string, notBefore: Date): Promise<Issuer> {
    const { csrPem, keyPath } = await request(name);
    const stem = next('future');
    await write(`${stem}.csr`, csrPem);
    await write(`${stem}.index`, '');
    await write(`${stem}.serial`, '01\n');
    await write(`${stem}.ext`, [...CA_EXT, 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'].join('\n'));
    await write(
      `${stem}.cnf`,
      [
        '[ca]',
        'default_ca = d',
        '[d]',
        `database = ${stem}.index`,
        `new_certs_dir = ${files.dir}`,
        `serial = ${stem}.serial`,
        'default_md = sha256',
        'policy = p',
        'unique_subject = no',
        '[p]',
        'commonName = supplied',
      ].join('\n'),
    );
    const stamp = (date: Date) => `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    await openssl([
      'ca',
      '-batch',
      '-notext',
      '-config',
      `${stem}.cnf`,
      '-cert',
      issuer.certPath,
      '-keyfile',
      issuer.keyPath,
      '-in',
      `${stem}.csr`,
      '-startdate',
      stamp(notBefore),
      '-enddate',
      stamp(new Date(notBefore.getTime() + 365 * DAY)),
      '-extfile',
      `${stem}.ext`,
      '-out',
      `${stem}.pem`,
    ]);
    return { pem: await readFile(`${stem}.pem`, 'utf8'), certPath: `${stem}.pem`, keyPath, digest: ['-sha256'] };
  }

  return { root, sign, intermediate, futureIntermediate, v1, files };
}

const { pendingSubordinate } = api;

const chainOf = (...issuers: { pem: string }[]) => issuers.map((issuer) => issuer.pem.trim()).join('\n');
const billed = (id: string) => prisma.caUsagePeriod.count({ where: { caId: id } });

/** A refusal left the CA as it was: PENDING, no certificate, nothing billed. */
async function assertUntouched(t: Test, id: string) {
  t.match(await api.show(id), { status: 'PENDING', serial_number: null, not_after: null }, 'still PENDING, no certificate recorded');
  t.equal(await billed(id), 0, 'no billing record');
}

/** Each case is refused with 400 PCA.00020001 and its own message, never the CSR-mismatch one of §4.2.5. */
async function assertRefusals(t: Test, id: string, cases: [string, Json, RegExp][]) {
  for (const [label, body, message] of cases) {
    await t.test(label, async (t) => {
      const response = await call('POST', `${CA}/${id}/import`, body);
      assertError(t, response, 400, 'PCA.00020001', message);
      t.notMatch(response.body.error_msg ?? '', /issued from the CSR/, 'not the key-mismatch message');
    });
  }
  await assertUntouched(t, id);
}

t.test('a parent whose path length is used up cannot have the CA below it', async (t) => {
  const pki = await externalPki(t);
  const rootPathlen0 = await pki.root('pathlen0-root', ['basicConstraints=critical,CA:TRUE,pathlen:0', CA_EXT[1]]);
  const rootPathlen1 = await pki.root('pathlen1-root', ['basicConstraints=critical,CA:TRUE,pathlen:1', CA_EXT[1]]);
  const between = await pki.intermediate(rootPathlen1, 'between');
  const { id, csr } = await pendingSubordinate('path-too-long');
  await assertRefusals(t, id, [
    [
      'root pathlen:0 -> the CA',
      { certificate: await pki.sign(rootPathlen0, csr, OUR_CA_EXT), certificate_chain: rootPathlen0.pem },
      /the certificate exceeds the path length of certificate_chain\[0\]: its pathlen:0 allows 0 CA certificates below it/,
    ],
    [
      'root pathlen:1 -> intermediate -> the CA',
      { certificate: await pki.sign(between, csr, OUR_CA_EXT), certificate_chain: chainOf(between, rootPathlen1) },
      /the certificate exceeds the path length of certificate_chain\[1\]: its pathlen:1 allows 1 CA certificate below it/,
    ],
  ]);
});

t.test('the CA keeps the path length its parents leave: pathlen:3 under a pathlen:1 root is 0, so no subordinates', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('inherit-root', ['basicConstraints=critical,CA:TRUE,pathlen:1', CA_EXT[1]]);
  const { id, csr } = await pendingSubordinate('inherits');
  const certificate = await pki.sign(root, csr, ['basicConstraints=critical,CA:TRUE,pathlen:3', OUR_CA_EXT[1]]);
  const imported = await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: root.pem });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.match(await api.show(id), { status: 'ACTIVED', path_length: 0 });
  assertError(
    t,
    await call('POST', CA, {
      type: 'SUBORDINATE',
      issuer_id: id,
      distinguished_name: { ...DN, common_name: 'too-deep' },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'DAY', value: 30 },
    }),
    400,
    'PCA.00020203',
    /path_length 0 and cannot sign a CA/,
  );
  const exported = (await call('POST', `${CA}/${id}/export`)).body;
  await verifyWithChain(t, await issueLeaf(t, api, id), `${exported.certificate}\n${exported.certificate_chain}`, 'leaf -> CA -> root');
});

t.test('a self-issued certificate in the chain uses up no path length (RFC 5280 §6.1.4 (l))', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('rollover', ['basicConstraints=critical,CA:TRUE,pathlen:1', CA_EXT[1]]);
  // The same name with a new key, signed by the old one: a key rollover certificate.
  const rollover = await pki.intermediate(root, 'rollover');
  const { id, csr } = await pendingSubordinate('below-rollover');
  const imported = await call('POST', `${CA}/${id}/import`, {
    certificate: await pki.sign(rollover, csr, OUR_CA_EXT),
    certificate_chain: chainOf(rollover, root),
  });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.match(await api.show(id), { status: 'ACTIVED', path_length: 0 }, 'the root allowed one CA level: this one');
});

t.test('every issuer in the chain is a CA that may sign certificates (RFC 5280 §4.2.1.9, §4.2.1.3)', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('issuers-root');
  const endEntity = await pki.intermediate(root, 'end-entity', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
  ]);
  const unconstrained = await pki.intermediate(root, 'no-basic-constraints', ['keyUsage=critical,keyCertSign,cRLSign']);
  const noCertSign = await pki.intermediate(root, 'no-cert-sign', [CA_EXT[0], 'keyUsage=critical,digitalSignature,cRLSign']);
  const fakeRoot = await pki.root('end-entity-root', [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyCertSign',
  ]);
  const underFakeRoot = await pki.intermediate(fakeRoot, 'under-end-entity-root');
  const { id, csr } = await pendingSubordinate('issuers');
  const under = async (issuer: Issuer) => pki.sign(issuer, csr, OUR_CA_EXT);
  await assertRefusals(t, id, [
    [
      'an end-entity certificate (CA:FALSE) as parent',
      { certificate: await under(endEntity), certificate_chain: chainOf(endEntity, root) },
      /certificate_chain\[0\] cannot issue the certificate: it is not a CA certificate \(basicConstraints cA must be TRUE/,
    ],
    [
      'a parent without basicConstraints',
      { certificate: await under(unconstrained), certificate_chain: chainOf(unconstrained, root) },
      /certificate_chain\[0\] cannot issue the certificate: it is not a CA certificate/,
    ],
    [
      'a parent whose keyUsage lacks keyCertSign',
      { certificate: await under(noCertSign), certificate_chain: chainOf(noCertSign, root) },
      /certificate_chain\[0\] cannot issue the certificate: its key usage lacks keyCertSign/,
    ],
    [
      'a self-signed end-entity certificate as root',
      { certificate: await under(underFakeRoot), certificate_chain: chainOf(underFakeRoot, fakeRoot) },
      /certificate_chain\[1\] cannot issue certificate_chain\[0\]: it is not a CA certificate/,
    ],
  ]);
  // keyUsage is required of an issuer only when present: a CA:TRUE parent without it may sign.
  const noKeyUsage = await pki.intermediate(root, 'no-key-usage', [CA_EXT[0]]);
  const accepted = await call('POST', `${CA}/${id}/import`, {
    certificate: await under(noKeyUsage),
    certificate_chain: chainOf(noKeyUsage, root),
  });
  t.equal(accepted.status, 204, JSON.stringify(accepted.body));
});

t.test('a misordered, incomplete or mismatched chain, or an unverifiable algorithm: each refusal says what is wrong', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('order-root');
  const parent = await pki.intermediate(root, 'order-parent');
  // The parent's key under another name: the signature verifies, the names do not match.
  const renamed = await pki.intermediate(root, 'renamed-parent', CA_EXT, { keyPath: parent.keyPath });
  const edRoot = await pki.root('ed25519-root', CA_EXT, ED25519);
  const { id, csr } = await pendingSubordinate('ordering');
  const certificate = await pki.sign(parent, csr, OUR_CA_EXT);
  await assertRefusals(t, id, [
    [
      'root first, then the parent',
      { certificate, certificate_chain: chainOf(root, parent) },
      /certificate_chain\[0\]'s subject is not the issuer the certificate names: the chain must hold the parent first/,
    ],
    [
      'the parent without its root',
      { certificate, certificate_chain: chainOf(parent) },
      /certificate_chain\[0\] is not self-signed: the chain must end with the root/,
    ],
    [
      "the parent's key under another subject",
      { certificate, certificate_chain: chainOf(renamed, root) },
      /certificate_chain\[0\]'s subject is not the issuer the certificate names/,
    ],
    [
      'a parent signing with Ed25519, outside §10.3',
      { certificate: await pki.sign(edRoot, csr, OUR_CA_EXT), certificate_chain: edRoot.pem },
      /the certificate is signed with an algorithm this service cannot verify/,
    ],
  ]);
  const accepted = await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: chainOf(parent, root) });
  t.equal(accepted.status, 204, JSON.stringify(accepted.body));
});

t.test('expired or not yet valid certificates are refused by the service clock, with 5 minutes of skew', async (t) => {
  t.teardown(() => {
    offset = 0;
  });
  const pki = await externalPki(t);
  const root = await pki.root('validity-root');
  const shortParent = await pki.intermediate(root, 'short-parent', CA_EXT, { days: 1 });
  const laterParent = await pki.futureIntermediate(root, 'later-parent', new Date(Date.now() + DAY));
  const { id, csr } = await pendingSubordinate('validity');
  const refuse = async (label: string, at: number, body: Json, message: RegExp) => {
    offset = at;
    await t.test(label, async (t) => assertError(t, await call('POST', `${CA}/${id}/import`, body), 400, 'PCA.00020001', message));
    offset = 0;
  };
  const oneDay = await pki.sign(root, csr, OUR_CA_EXT, 1);
  await refuse('the certificate, 2 days on', 2 * DAY, { certificate: oneDay, certificate_chain: root.pem }, /the certificate expired at /);
  await refuse(
    'the certificate, an hour early',
    -HOUR,
    { certificate: oneDay, certificate_chain: root.pem },
    /the certificate is not valid before /,
  );
  await refuse(
    'a parent, 2 days on',
    2 * DAY,
    { certificate: await pki.sign(shortParent, csr, OUR_CA_EXT), certificate_chain: chainOf(shortParent, root) },
    /certificate_chain\[0\] expired at /,
  );
  await refuse(
    'a parent valid from tomorrow',
    0,
    { certificate: await pki.sign(laterParent, csr, OUR_CA_EXT), certificate_chain: chainOf(laterParent, root) },
    /certificate_chain\[0\] is not valid before /,
  );
  await assertUntouched(t, id);
  // An external signer's clock a little ahead of ours: 2 minutes is inside the allowance.
  offset = -2 * 60_000;
  const accepted = await call('POST', `${CA}/${id}/import`, { certificate: oneDay, certificate_chain: root.pem });
  t.equal(accepted.status, 204, JSON.stringify(accepted.body));
  t.equal(await billed(id), 1, 'billed once imported');
});

t.test('a certificate repeated in the chain is refused, not stored twice', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('repeat-root');
  const { id, csr } = await pendingSubordinate('repeats');
  const certificate = await pki.sign(root, csr, OUR_CA_EXT);
  await assertRefusals(t, id, [
    ['the root twice', { certificate, certificate_chain: chainOf(root, root) }, /certificate_chain\[1\] repeats certificate_chain\[0\]/],
    [
      'the certificate itself',
      { certificate, certificate_chain: chainOf({ pem: certificate }, root) },
      /certificate_chain\[0\] repeats the certificate/,
    ],
  ]);
  t.equal((await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: root.pem })).status, 204);
  const chain = (await call('POST', `${CA}/${id}/export`)).body.certificate_chain;
  t.equal(chain.match(/BEGIN CERTIFICATE/g).length, 1, 'the root once');
});

t.test('a valid three-level import: root, external intermediate, the CA; openssl verifies a leaf under it', async (t) => {
  const pki = await externalPki(t);
  const root = await pki.root('three-level-root');
  const parent = await pki.intermediate(root, 'three-level-parent', ['basicConstraints=critical,CA:TRUE,pathlen:1', CA_EXT[1]]);
  const { id, csr } = await pendingSubordinate('three-level');
  const certificate = await pki.sign(parent, csr, ['basicConstraints=critical,CA:TRUE,pathlen:0', OUR_CA_EXT[1]]);
  const imported = await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: chainOf(parent, root) });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.match(await api.show(id), { status: 'ACTIVED', gen_mode: 'IMPORT', path_length: 0 });
  t.equal(await billed(id), 1, 'billed from the import');
  const exported = (await call('POST', `${CA}/${id}/export`)).body;
  t.equal(exported.certificate_chain.match(/BEGIN CERTIFICATE/g).length, 2, 'the chain as given: parent, root');
  const leaf = await issueLeaf(t, api, id);
  await verifyWithChain(t, leaf, `${exported.certificate}\n${exported.certificate_chain}`, 'leaf -> CA -> intermediate -> root');
  const files = pki.files;
  const plain = await runOpenssl([
    'verify',
    '-CAfile',
    root.certPath,
    '-untrusted',
    await files.write('three-level-untrusted.pem', `${exported.certificate}\n${parent.pem}`),
    await files.write('three-level-leaf.pem', `${leaf}\n`),
  ]);
  t.equal(plain.code, 0, plain.output.trim());
});

t.test('a chain ending in an X.509 v1 root (no extensions) is taken, as openssl takes such a trust anchor', async (t) => {
  const pki = await externalPki(t);
  const files = pki.files;
  const root = await pki.v1('v1-root');
  t.match((await runOpenssl(['x509', '-in', root.certPath, '-noout', '-text'])).output, /Version: 1 \(0x0\)/, 'the root is v1');
  const { id, csr } = await pendingSubordinate('under-v1-root');
  const certificate = await pki.sign(root, csr, OUR_CA_EXT, 365, false);
  const imported = await call('POST', `${CA}/${id}/import`, { certificate, certificate_chain: chainOf(root) });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.match(await api.show(id), { status: 'ACTIVED', path_length: 1 });
  const leaf = await issueLeaf(t, api, id);
  const verified = await runOpenssl([
    'verify',
    '-CAfile',
    root.certPath,
    '-untrusted',
    await files.write('v1-untrusted.pem', certificate),
    await files.write('v1-leaf.pem', `${leaf}\n`),
  ]);
  t.equal(verified.code, 0, verified.output.trim());

  // Only the root may be v1: a v1 certificate below it is no CA.
  const v1Intermediate = await pki.v1('v1-int', root);
  const { id: below, csr: belowCsr } = await pendingSubordinate('under-v1-intermediate');
  const refused = await call('POST', `${CA}/${below}/import`, {
    certificate: await pki.sign(v1Intermediate, belowCsr, OUR_CA_EXT, 365, false),
    certificate_chain: chainOf(v1Intermediate, root),
  });
  assertError(t, refused, 400, 'PCA.00020001', /certificate_chain\[0\] cannot issue .*not a CA certificate/);
  await assertUntouched(t, below);
});

t.test('without a chain, a parent of this service bounds the path length by its own path_length', async (t) => {
  const root = await api.root();
  const parent = await api.subordinate(root, { path_length: 2, distinguished_name: { ...DN, common_name: 'in-service-parent' } });
  /** The pending CA's certificate signed by the parent's key (as a CSR export signed here would be), pathlen:1. */
  const signedByParent = (name: string) => signedByServiceCa(harness, keyStores, parent, name, 1);
  const lowered = await signedByParent('parent-at-1');
  const refused = await signedByParent('parent-at-0');
  // The parent's path_length as an import under a tighter external chain now stores it (below its certificate's own).
  const setParentPathLength = (pathLength: number) => prisma.certificateAuthority.update({ where: { id: parent }, data: { pathLength } });
  await setParentPathLength(1);
  const imported = await call('POST', `${CA}/${lowered.id}/import`, { certificate: lowered.certificate });
  t.equal(imported.status, 204, JSON.stringify(imported.body));
  t.match(
    await api.show(lowered.id),
    { status: 'ACTIVED', issuer_id: parent, path_length: 0 },
    'pathlen:1 lowered to what the parent leaves',
  );
  await setParentPathLength(0);
  assertError(
    t,
    await call('POST', `${CA}/${refused.id}/import`, { certificate: refused.certificate }),
    400,
    'PCA.00020001',
    new RegExp(`the certificate exceeds the path length of its issuer, CA ${parent}, whose path_length is 0`),
  );
  await assertUntouched(t, refused.id);
});
