/**
 * Scenarios 1 and 2 of shared/docs/scenarios.md end to end against a started server: the cert-manager issuer
 * flow of §1.2 over HTTP (fetch), judged by openssl (chains, Istio plug-in CA, `s_server` requiring client
 * certificates) and curl (TLS and mutual TLS: each refusal by its exit code and the reason curl prints).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { freePort } from '../helpers/database.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, opensslSign, pemBlocks } from '../certificates/support.ts';
import { CA, CERT, createHierarchy, curl, startServer } from './support.ts';

const server = await startServer('scenarios');
const { dir, ok } = server;

/** What cert-manager's external issuer stores (§1.2 step 4). */
function secretOf(exported: { certificate: string; certificate_chain: string }) {
  const chain = pemBlocks(exported.certificate_chain);
  return { tlsCrt: [exported.certificate, ...chain.slice(0, -1)].join('\n'), caCrt: chain.at(-1)! };
}

const mesh = await createHierarchy(server, 'asm');

t.test('scenario 1: a mesh root of trust for Istio, issued through cert-manager', async (t) => {
  const root = await ok('GET', `${CA}/${mesh.rootId}`);
  t.equal(root.path_length, 7, 'a root reports path length 7');
  const issuer = await ok('GET', `${CA}/${mesh.subId}`);
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
  const { certificate_id: meshId } = await ok('POST', `${CERT}/csr`, request, { headers: { 'Idempotency-Key': 'mesh-ca-1' } });
  const exported = (await ok('POST', `${CA}/${meshId}/export`)) as { certificate: string; certificate_chain: string };
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
  const signed = await opensslSign({
    csr: dir.file('workload.csr'),
    ca: cacerts['ca-cert.pem'],
    caKey: cacerts['ca-key.pem'],
    extFile: ext,
    out: dir.file('workload.pem'),
  });
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
  const rogue = await opensslSign({
    csr: dir.file('rogue-ca.csr'),
    ca: cacerts['ca-cert.pem'],
    caKey: cacerts['ca-key.pem'],
    extFile: rogueExt,
    out: dir.file('rogue-ca.pem'),
  });
  t.ok(rogue.ok, rogue.stderr);
  const underRogue = await opensslSign({
    csr: dir.file('workload.csr'),
    ca: dir.file('rogue-ca.pem'),
    caKey: dir.file('rogue-ca.key'),
    extFile: ext,
    out: dir.file('rogue-workload.pem'),
  });
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
  const meshCa = await ok('GET', `${CA}/${meshId}`);
  t.match(meshCa, { type: 'SUBORDINATE', gen_mode: 'CSR', status: 'ACTIVED', path_length: 0 });
  t.equal(meshCa.not_after - meshCa.not_before, 7200 * 3_600_000, 'duration 7200h');

  // Renewal before renewBefore: a new CSR, a new certificate; the old one is untouched.
  const renewal = await opensslCsr(dir, 'mesh-ca-2', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local/CN=mesh-ca']);
  const { certificate_id: renewedId } = await ok(
    'POST',
    `${CERT}/csr`,
    { ...request, csr: renewal.csr },
    { headers: { 'Idempotency-Key': 'mesh-ca-2' } },
  );
  t.not(renewedId, meshId);
  const oldAgain = await ok('POST', `${CA}/${meshId}/export`);
  t.equal(oldAgain.certificate, exported.certificate, 'the old certificate is not disturbed');
  t.equal((await ok('GET', `${CA}/${meshId}`)).status, 'ACTIVED');
  const retried = await ok('POST', `${CERT}/csr`, request, { headers: { 'Idempotency-Key': 'mesh-ca-1' } });
  t.equal(retried.certificate_id, meshId, 'the same request retried returns the same certificate');
});

/**
 * curl GET https://<host>:<port>/ with <host> resolved to 127.0.0.1, trusting `cacert` only; with a client
 * certificate and key if given.
 */
function httpsGet(to: { port: number; cacert: string; host?: string; cert?: string; key?: string }) {
  const host = to.host ?? 'cert-test.com';
  const client = to.cert && to.key ? ['--cert', to.cert, '--key', to.key] : [];
  return curl(['--cacert', to.cacert, '--resolve', `${host}:${to.port}:127.0.0.1`, ...client, `https://${host}:${to.port}/`]);
}

/** The gateway: a Node HTTPS server answering `hello <client CN>`. */
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

/**
 * A server requiring client certificates: `openssl s_server -Verify -verify_return_error -www`, which refuses a
 * client certificate it cannot verify with a TLS alert (Node's server only drops the connection), so the client
 * sees why. Its -www page shows the client certificate it accepted.
 */
async function startMtlsServer(files: { cert: string; chain: string; key: string; caFile: string }) {
  const port = await freePort();
  const server = spawn(
    'openssl',
    [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-cert',
      files.cert,
      '-cert_chain',
      files.chain,
      '-key',
      files.key,
      '-CAfile',
      files.caFile,
      '-Verify',
      '4',
      '-verify_return_error',
      '-www',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // A test process that dies before its teardown must not leave the server behind.
  const stop = () => server.kill();
  process.once('exit', stop);
  let log = '';
  server.stderr.on('data', (chunk) => {
    log += String(chunk);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`openssl s_server exited (${code}): ${log}`)));
    server.stdout.on('data', (chunk) => {
      if (String(chunk).includes('ACCEPT')) resolve();
    });
  });
  const exited = new Promise((done) => server.once('exit', done));
  return {
    port,
    log: () => log,
    async close() {
      process.off('exit', stop);
      server.kill();
      await exited;
    },
  };
}

/** The value line of a certificate extension in openssl's text dump, with ` critical` if marked so. */
function extension(text: string, name: string): string {
  const found = text.match(new RegExp(`\\n\\s*X509v3 ${name}:( critical)? *\\n\\s*(.*)\\n`));
  return found ? `${found[2]}${found[1] ?? ''}` : `no ${name} extension`;
}

async function issueLeaf(hierarchy: { subId: string }, name: string, reqArgs: string[]) {
  const { csr, keyFile } = await opensslCsr(dir, name, [...KEY_ARGS.rsa2048], reqArgs);
  const { certificate_id: id } = await ok('POST', `${CERT}/csr`, {
    issuer_id: hierarchy.subId,
    csr,
    validity: { type: 'HOUR', value: 7200 },
  });
  const exported = (await ok('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' })) as {
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
  t.equal(extension(text, 'Key Usage'), 'Digital Signature, Key Encipherment critical', 'key usage: exactly these, critical');
  // A CSR without EKU (cert-manager's default usages) gets serverAuth and clientAuth (docs/api-reference.md 4.4.2).
  t.equal(extension(text, 'Extended Key Usage'), 'TLS Web Server Authentication, TLS Web Client Authentication', 'EKU: exactly this line');
  t.equal(extension(text, 'Basic Constraints'), 'CA:FALSE critical', 'basic constraints CA:FALSE, critical');
  t.equal(extension(text, 'Subject Alternative Name'), 'DNS:cert-test.com', 'SAN: the host only');
  const leafFile = await dir.write('ingress.pem', ingress.leaf);
  const dates = (await openssl(['x509', '-in', leafFile, '-noout', '-startdate', '-enddate'])).stdout;
  const notBefore = Date.parse(dates.match(/^notBefore=(.+)$/m)?.[1] ?? '');
  const notAfter = Date.parse(dates.match(/^notAfter=(.+)$/m)?.[1] ?? '');
  t.equal(notAfter - notBefore, 7200 * 3_600_000, `duration: 7200h = 300 days from Not Before to Not After (${dates.trim()})`);
  const rootFile = await dir.write('ingress-root.pem', ingress.caCrt);
  const key = await readFile(ingress.keyFile);

  const gateway = await startTlsServer({ key, cert: ingress.tlsCrt });
  t.teardown(() => gateway.close());
  const handshake = await httpsGet({ port: gateway.port, cacert: rootFile });
  t.equal(handshake.code, 0, `curl trusts only the root and verifies the chain and SAN: ${handshake.stderr}`);
  t.equal(handshake.output, 'hello anonymous\n', 'the gateway answered');
  const wrongName = await httpsGet({ port: gateway.port, cacert: rootFile, host: 'other.com' });
  t.equal(wrongName.code, 60, `a host outside the SAN is refused by the client's verification: ${wrongName.stderr}`);
  t.match(wrongName.stderr, /^curl: \(60\) SSL: no alternative certificate subject name matches target host name 'other\.com'\n/);

  const other = await createHierarchy(server, 'other-mesh');
  const otherRoot = await dir.write('other-root.pem', pemBlocks((await ok('POST', `${CA}/${other.rootId}/export`)).certificate)[0]!);
  const foreignTrust = await httpsGet({ port: gateway.port, cacert: otherRoot });
  t.equal(foreignTrust.code, 60, `a client trusting only another root refuses the gateway: ${foreignTrust.stderr}`);
  t.match(foreignTrust.stderr, /^curl: \(60\) SSL certificate problem: unable to get local issuer certificate\n/);

  // Mutual TLS: a server requiring client certificates from this hierarchy (trusting its root only).
  const mtls = await startMtlsServer({
    cert: leafFile,
    chain: await dir.write('ingress-sub.pem', pemBlocks(ingress.tlsCrt)[1]!),
    key: ingress.keyFile,
    caFile: rootFile,
  });
  t.teardown(() => mtls.close());
  const client = await issueLeaf(mesh, 'mesh-client', ['-subj', '/CN=mesh-client', '-addext', 'extendedKeyUsage=clientAuth']);
  t.equal(
    extension(await certificateText(dir, client.leaf), 'Extended Key Usage'),
    'TLS Web Client Authentication',
    "the CSR's EKU: clientAuth only",
  );
  const clientCert = await dir.write('mesh-client-chain.pem', client.tlsCrt);
  const accepted = await httpsGet({ port: mtls.port, cacert: rootFile, cert: clientCert, key: client.keyFile });
  t.equal(accepted.code, 0, `a client certificate from the same hierarchy is accepted: ${accepted.stderr}`);
  t.match(accepted.output, /Client certificate\n[\s\S]*Subject: CN ?= ?mesh-client\n/, 'the server saw the mesh-client certificate');

  const stranger = await issueLeaf(other, 'stranger', ['-subj', '/CN=stranger', '-addext', 'extendedKeyUsage=clientAuth']);
  const strangerCert = await dir.write('stranger-chain.pem', stranger.tlsCrt);
  const refused = await httpsGet({ port: mtls.port, cacert: rootFile, cert: strangerCert, key: stranger.keyFile });
  t.equal(refused.code, 56, `a client certificate from another root is refused by the server: ${refused.stderr}`);
  t.match(refused.stderr, /^curl: \(56\) OpenSSL SSL_read: .*tlsv1 alert unknown ca/, "the server's alert: unknown CA");
  const anonymous = await httpsGet({ port: mtls.port, cacert: rootFile });
  t.equal(anonymous.code, 56, `no client certificate is refused by the server: ${anonymous.stderr}`);
  t.match(
    anonymous.stderr,
    /^curl: \(56\) OpenSSL SSL_read: .*tlsv13 alert certificate required/,
    "the server's alert: certificate required",
  );
  t.match(mtls.log(), /verify error:num=20:unable to get local issuer certificate/, 'the server could not chain the stranger to its root');
});
