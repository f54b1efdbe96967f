/**
 * Scenarios 1 and 2 of shared/docs/scenarios.md end to end against a started server: the cert-manager issuer
 * flow of §1.2 over HTTP (fetch), judged by openssl (chains, Istio plug-in CA) and curl (TLS and mutual TLS).
 */
import { execFile } from 'node:child_process';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, pemBlocks, scratch } from '../certificates/support.ts';

const run = promisify(execFile);
const harness = await createTestApp();
t.teardown(() => harness.close());
const base = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const dir = await scratch('scenarios');
const headers = { ...harness.auth(), 'content-type': 'application/json' };
const CA = `${base}/v1/private-certificate-authorities`;
const CERT = `${base}/v1/private-certificates`;
const orgDn = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'huawei-cloud', organizational_unit: 'container' };

async function call(method: string, url: string, body?: unknown, extra: Record<string, string> = {}) {
  const response = await fetch(url, {
    method,
    headers: { ...headers, ...extra },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${url} -> ${response.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, any>) : {};
}

/** What cert-manager's external issuer stores (§1.2 step 4). */
function secretOf(exported: { certificate: string; certificate_chain: string }) {
  const chain = pemBlocks(exported.certificate_chain);
  return { tlsCrt: [exported.certificate, ...chain.slice(0, -1)].join('\n'), caCrt: chain.at(-1)! };
}

async function createHierarchy(name: string) {
  const { ca_id: rootId } = await call('POST', CA, {
    type: 'ROOT',
    distinguished_name: { common_name: name, ...orgDn },
    key_algorithm: 'RSA2048',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  const { ca_id: subId } = await call('POST', CA, {
    type: 'SUBORDINATE',
    issuer_id: rootId,
    distinguished_name: { common_name: `${name}-subordinate-ca`, ...orgDn },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'MONTH', value: 11 },
    path_length: 1,
  });
  return { rootId, subId };
}

const mesh = await createHierarchy('asm');

t.test('scenario 1: a mesh root of trust for Istio, issued through cert-manager', async (t) => {
  const root = await call('GET', `${CA}/${mesh.rootId}`);
  t.equal(root.path_length, 7, 'a root reports path length 7');
  const issuer = await call('GET', `${CA}/${mesh.subId}`);
  t.match(issuer, { status: 'ACTIVED', path_length: 1, type: 'SUBORDINATE' }, 'the CCMIssuer ready check');

  // cert-manager makes the key and CSR (isCA: true, commonName mesh-ca, organizations [cluster.local]).
  const { csr, keyFile } = await opensslCsr(
    dir,
    'mesh-ca',
    [...KEY_ARGS.p256],
    [
      '-subj',
      '/O=cluster.local/CN=mesh-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign',
    ],
  );
  const request = { issuer_id: mesh.subId, csr, validity: { type: 'HOUR', value: 7200 }, type: 'INTERMEDIATE_CA' };
  const { certificate_id: meshId } = await call('POST', `${CERT}/csr`, request, { 'Idempotency-Key': 'mesh-ca-1' });
  const exported = (await call('POST', `${CA}/${meshId}/export`)) as { certificate: string; certificate_chain: string };
  const secret = secretOf(exported);
  t.equal(pemBlocks(secret.tlsCrt).length, 2, 'tls.crt = mesh-ca + the subordinate');

  // istiod's cacerts, and a short-lived workload certificate signed with the mesh-ca key.
  const cacerts = {
    'ca-cert.pem': await dir.write('ca-cert.pem', exported.certificate),
    'ca-key.pem': keyFile,
    'root-cert.pem': await dir.write('root-cert.pem', secret.caCrt),
    'cert-chain.pem': await dir.write('cert-chain.pem', `${secret.tlsCrt}\n${secret.caCrt}`),
  };
  const subPem = await dir.write('subordinate.pem', pemBlocks(secret.tlsCrt)[1]);
  await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local']);
  const ext = await dir.write(
    'workload.ext',
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      'subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/productpage',
    ].join('\n'),
  );
  const signed = await openssl([
    'x509',
    '-req',
    '-in',
    dir.file('workload.csr'),
    '-CA',
    cacerts['ca-cert.pem'],
    '-CAkey',
    cacerts['ca-key.pem'],
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    ext,
    '-out',
    dir.file('workload.pem'),
  ]);
  t.ok(signed.ok, signed.stderr);
  // As the scenario writes it: -CAfile <(cat ca-cert.pem <subordinate> root-cert.pem), one concatenated file.
  const bundle = await dir.write('ca-bundle.pem', `${exported.certificate}\n${pemBlocks(secret.tlsCrt)[1]}\n${secret.caCrt}\n`);
  const asIstio = await openssl(['verify', '-CAfile', bundle, dir.file('workload.pem')]);
  t.ok(asIstio.ok, `openssl verify -CAfile <(cat ca-cert.pem subordinate root-cert.pem) workload.pem: ${asIstio.stdout}${asIstio.stderr}`);
  t.equal(asIstio.stdout, `${dir.file('workload.pem')}: OK\n`);
  const untrusted = await dir.write('untrusted.pem', `${pemBlocks(secret.tlsCrt)[1]}\n${exported.certificate}`);
  const verified = await openssl(['verify', '-CAfile', cacerts['root-cert.pem'], '-untrusted', untrusted, dir.file('workload.pem')]);
  t.ok(verified.ok, `workload verifies: ${verified.stdout}${verified.stderr}`);
  const chainVerified = await openssl([
    'verify',
    '-x509_strict',
    '-CAfile',
    cacerts['root-cert.pem'],
    '-untrusted',
    subPem,
    cacerts['ca-cert.pem'],
  ]);
  t.ok(chainVerified.ok, `mesh-ca verifies strictly: ${chainVerified.stderr}`);
  const text = await certificateText(dir, exported.certificate);
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/, 'a CA whose path length allows exactly workloads');

  // ...and nothing more: a CA the mesh-ca key signs (openssl) and a workload under that CA are refused.
  await opensslCsr(dir, 'rogue-ca', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local/CN=rogue-ca']);
  const rogueExt = await dir.write(
    'rogue-ca.ext',
    [
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
    ].join('\n'),
  );
  const rogue = await openssl([
    'x509',
    '-req',
    '-in',
    dir.file('rogue-ca.csr'),
    '-CA',
    cacerts['ca-cert.pem'],
    '-CAkey',
    cacerts['ca-key.pem'],
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    rogueExt,
    '-out',
    dir.file('rogue-ca.pem'),
  ]);
  t.ok(rogue.ok, rogue.stderr);
  const underRogue = await openssl([
    'x509',
    '-req',
    '-in',
    dir.file('workload.csr'),
    '-CA',
    dir.file('rogue-ca.pem'),
    '-CAkey',
    dir.file('rogue-ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    ext,
    '-out',
    dir.file('rogue-workload.pem'),
  ]);
  t.ok(underRogue.ok, underRogue.stderr);
  const refusedWorkload = await openssl([
    'verify',
    '-CAfile',
    bundle,
    '-untrusted',
    dir.file('rogue-ca.pem'),
    dir.file('rogue-workload.pem'),
  ]);
  t.notOk(refusedWorkload.ok, 'a workload under a CA the mesh-ca signed is refused');
  t.match(
    refusedWorkload.stdout + refusedWorkload.stderr,
    /CN = mesh-ca\nerror 25 at 2 depth lookup: path length constraint exceeded\n/,
    `refused at the mesh-ca (pathlen:0) for the path length: ${refusedWorkload.stdout}${refusedWorkload.stderr}`,
  );
  // The rogue CA certificate alone is a path's target, which pathLenConstraint does not count (RFC 5280 4.2.1.9):
  // openssl accepts it as a certificate, and refuses every path that uses it as a CA, as above.
  const rogueAlone = await openssl(['verify', '-CAfile', bundle, dir.file('rogue-ca.pem')]);
  t.equal(rogueAlone.stdout, `${dir.file('rogue-ca.pem')}: OK\n`, 'the rogue CA alone is only a target, not a CA in a path');
  const meshCa = await call('GET', `${CA}/${meshId}`);
  t.match(meshCa, { type: 'SUBORDINATE', gen_mode: 'CSR', status: 'ACTIVED', path_length: 0 });
  t.equal(meshCa.not_after - meshCa.not_before, 7200 * 3_600_000, 'duration 7200h');

  // Renewal before renewBefore: a new CSR, a new certificate; the old one is untouched.
  const renewal = await opensslCsr(dir, 'mesh-ca-2', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local/CN=mesh-ca']);
  const { certificate_id: renewedId } = await call(
    'POST',
    `${CERT}/csr`,
    { ...request, csr: renewal.csr },
    { 'Idempotency-Key': 'mesh-ca-2' },
  );
  t.not(renewedId, meshId);
  const oldAgain = await call('POST', `${CA}/${meshId}/export`);
  t.equal(oldAgain.certificate, exported.certificate, 'the old certificate is not disturbed');
  t.equal((await call('GET', `${CA}/${meshId}`)).status, 'ACTIVED');
  const retried = await call('POST', `${CERT}/csr`, request, { 'Idempotency-Key': 'mesh-ca-1' });
  t.equal(retried.certificate_id, meshId, 'the same request retried returns the same certificate');
});

/** Runs curl; resolves with its exit status and output. */
async function curl(args: string[]) {
  try {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', ...args]);
    return { ok: true, output: stdout };
  } catch (error) {
    return { ok: false, output: String((error as { stderr?: string }).stderr ?? error) };
  }
}

function startTlsServer(options: https.ServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer(options, (request, response) => {
    const peer = (request.socket as import('node:tls').TLSSocket).getPeerCertificate();
    response.end(`hello ${peer?.subject?.CN ?? 'anonymous'}\n`);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({ port: (server.address() as AddressInfo).port, close: () => new Promise((done) => server.close(() => done())) }),
    );
  });
}

async function issueLeaf(hierarchy: { subId: string }, name: string, reqArgs: string[]) {
  const { csr, keyFile } = await opensslCsr(dir, name, [...KEY_ARGS.rsa2048], reqArgs);
  const { certificate_id: id } = await call('POST', `${CERT}/csr`, {
    issuer_id: hierarchy.subId,
    csr,
    validity: { type: 'HOUR', value: 7200 },
  });
  const exported = (await call('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' })) as {
    certificate: string;
    certificate_chain: string;
    private_key: null;
  };
  if (exported.private_key !== null) throw new Error('a CSR-issued certificate must export no key');
  return { ...secretOf(exported), keyFile, leaf: exported.certificate };
}

t.test('scenario 2: TLS termination at the ingress gateway, and mutual TLS', async (t) => {
  const ingress = await issueLeaf(mesh, 'ingress', ['-subj', '/CN=ingress-server-crt', '-addext', 'subjectAltName=DNS:cert-test.com']);
  const text = await certificateText(dir, ingress.leaf);
  t.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s/);
  t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  const rootFile = await dir.write('ingress-root.pem', ingress.caCrt);
  const { readFile } = await import('node:fs/promises');
  const key = await readFile(ingress.keyFile);

  const gateway = await startTlsServer({ key, cert: ingress.tlsCrt });
  t.teardown(() => gateway.close());
  const url = `https://cert-test.com:${gateway.port}/`;
  const resolve = ['--resolve', `cert-test.com:${gateway.port}:127.0.0.1`];
  const handshake = await curl(['--cacert', rootFile, ...resolve, url]);
  t.ok(handshake.ok, `curl trusts only the root and verifies the chain and SAN: ${handshake.output}`);
  const wrongName = await curl([
    '--cacert',
    rootFile,
    '--resolve',
    `other.com:${gateway.port}:127.0.0.1`,
    `https://other.com:${gateway.port}/`,
  ]);
  t.notOk(wrongName.ok, 'a host outside the SAN is refused');

  // Mutual TLS: a server requiring client certificates from this hierarchy.
  const mtls = await startTlsServer({ key, cert: ingress.tlsCrt, ca: ingress.caCrt, requestCert: true, rejectUnauthorized: true });
  t.teardown(() => mtls.close());
  const mtlsUrl = `https://cert-test.com:${mtls.port}/`;
  const mtlsResolve = ['--resolve', `cert-test.com:${mtls.port}:127.0.0.1`];
  const client = await issueLeaf(mesh, 'mesh-client', ['-subj', '/CN=mesh-client', '-addext', 'extendedKeyUsage=clientAuth']);
  t.match(await certificateText(dir, client.leaf), /Extended Key Usage:\s+TLS Web Client Authentication\s/);
  const clientCert = await dir.write('mesh-client-chain.pem', client.tlsCrt);
  const accepted = await curl(['--cacert', rootFile, ...mtlsResolve, '--cert', clientCert, '--key', client.keyFile, mtlsUrl]);
  t.ok(accepted.ok, `a client certificate from the same hierarchy is accepted: ${accepted.output}`);
  t.match(accepted.output, /hello mesh-client/);

  const other = await createHierarchy('other-mesh');
  const stranger = await issueLeaf(other, 'stranger', ['-subj', '/CN=stranger', '-addext', 'extendedKeyUsage=clientAuth']);
  const strangerCert = await dir.write('stranger-chain.pem', stranger.tlsCrt);
  const refused = await curl(['--cacert', rootFile, ...mtlsResolve, '--cert', strangerCert, '--key', stranger.keyFile, mtlsUrl]);
  t.notOk(refused.ok, 'a client certificate from another root is refused');
  const anonymous = await curl(['--cacert', rootFile, ...mtlsResolve, mtlsUrl]);
  t.notOk(anonymous.ok, 'no client certificate is refused');
});
