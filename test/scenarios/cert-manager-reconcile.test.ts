/**
 * cert-manager's external-issuer reconcile loop against a started server, through the Huawei Node SDK (AK/SK):
 * CertificateRequests with and without isCA and a `duration` in hours are signed by create-by-CSR, every result is
 * fetched through the certificate routes (show + export, which serve a CSR-issued INTERMEDIATE_CA's id too), a
 * crash between sign and fetch is retried with the same Idempotency-Key, renewal happens once renewBefore is
 * reached, and the Secret (tls.crt, ca.crt) and Istio's plug-in CA files are judged by openssl against the root.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import { HcClient } from '@huaweicloud/huaweicloud-sdk-core/HcClient.js';
import { DefaultHttpClient } from '@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient.js';
import { formatSdkDate } from '../../src/auth/sdk-hmac.ts';
import { createTestApp } from '../helpers/app.ts';
import { KEY_ARGS, certificateText, openssl, opensslCsr, opensslSign, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';

type Json = Record<string, any>;

const harness = await createTestApp();
t.teardown(() => harness.close());
const { app } = harness;
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const dir = await scratch('cert-manager');

const keyResponse = await app.inject({
  method: 'POST',
  url: '/v1/access-keys',
  headers: harness.auth(),
  payload: { description: 'ccm-issuer' },
});
const { access, secret } = keyResponse.json().credential as { access: string; secret: string };
const client = new HcClient(new DefaultHttpClient({}, [base]))
  .withEndpoints([base])
  .withCredential(new GlobalCredentials().withAk(access).withSk(secret));
const sdk = (options: object) => client.sendRequest({ pathParams: {}, queryParams: {}, headers: {}, ...options } as never) as Promise<Json>;

/** A cert-manager CertificateRequest, reduced to what the issuer reads and writes. */
interface CertificateRequest {
  uid: string;
  isCA: boolean;
  /** Go duration as cert-manager writes it, e.g. "2160h0m0s". */
  duration: string;
  request: string;
  status: { certificateId?: string; certificate?: string; ca?: string; ready: boolean };
}

const hoursOf = (duration: string): number => Number(/^(\d+)h0m0s$/.exec(duration)![1]);

const org = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'example', organizational_unit: 'platform' };
const root = await sdk({
  method: 'POST',
  url: '/v1/private-certificate-authorities',
  contentType: 'application/json',
  data: {
    type: 'ROOT',
    distinguished_name: { common_name: 'cm-root', ...org },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 2 },
  },
});
const issuer = await sdk({
  method: 'POST',
  url: '/v1/private-certificate-authorities',
  contentType: 'application/json',
  data: {
    type: 'SUBORDINATE',
    issuer_id: root.ca_id,
    distinguished_name: { common_name: 'cm-issuing', ...org },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
    path_length: 1,
  },
});

class Crash extends Error {}

/**
 * One reconcile of the CCMIssuer controller: sign (idempotent on the request's uid), then fetch through the
 * certificate routes and assemble the Secret's tls.crt (leaf + chain without the root) and ca.crt (the root).
 */
async function reconcile(cr: CertificateRequest, crashAfterSign = false, attempt = 1): Promise<void> {
  if (cr.status.ready) return;
  // A retry is a new request, signed anew: the service refuses a second use of one signature (issue #13), and the
  // SDK dates its signatures in whole seconds, so a retry within the same second says it is a later one.
  const retryDate = attempt > 1 ? { 'X-Sdk-Date': formatSdkDate(new Date(Date.now() + (attempt - 1) * 1000)) } : {};
  const signed = await sdk({
    method: 'POST',
    url: '/v1/private-certificates/csr',
    contentType: 'application/json',
    headers: { 'Idempotency-Key': cr.uid, ...retryDate },
    data: {
      issuer_id: issuer.ca_id,
      csr: cr.request,
      type: cr.isCA ? 'INTERMEDIATE_CA' : 'ENTITY_CERT',
      validity: { type: 'HOUR', value: hoursOf(cr.duration) },
    },
  });
  cr.status.certificateId = signed.certificate_id as string;
  if (crashAfterSign) throw new Crash('controller died between sign and fetch');
  const shown = await sdk({
    method: 'GET',
    url: '/v1/private-certificates/{certificate_id}',
    pathParams: { certificate_id: cr.status.certificateId },
  });
  if (shown.status !== 'ISSUED') throw new Error(`certificate is ${shown.status}`);
  const exported = await sdk({
    method: 'POST',
    url: '/v1/private-certificates/{certificate_id}/export',
    pathParams: { certificate_id: cr.status.certificateId },
    contentType: 'application/json',
    data: { type: 'OTHER', is_compressed: 'false' },
  });
  const chain = pemBlocks(exported.certificate_chain as string);
  cr.status.certificate = [exported.certificate as string, ...chain.slice(0, -1)].join('\n');
  cr.status.ca = chain.at(-1);
  cr.status.ready = true;
}

/** Reconciles until Ready, as the controller's work queue does after an error. */
async function reconcileUntilReady(cr: CertificateRequest, crashes: number): Promise<number> {
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      await reconcile(cr, attempts <= crashes, attempts);
      return attempts;
    } catch (error) {
      if (!(error instanceof Crash)) throw error;
    }
  }
}

async function newRequest(name: string, isCA: boolean, hours: number) {
  const extensions = isCA
    ? ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign']
    : ['-addext', `subjectAltName=DNS:${name}.example.com`, '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  const { csr, keyFile } = await opensslCsr(
    dir,
    `${name}-${randomUUID()}`,
    [...KEY_ARGS.p256],
    ['-subj', `/O=cluster.local/CN=${name}`, ...extensions],
  );
  const cr: CertificateRequest = { uid: randomUUID(), isCA, duration: `${hours}h0m0s`, request: csr, status: { ready: false } };
  return { cr, keyFile };
}

const certificateTotal = async () =>
  (await sdk({ method: 'GET', url: '/v1/private-certificates', queryParams: { limit: 0 } })).total as number;
/** CSR-issued CAs are not listed (§4.4.2): counted in the database. */
const csrCaTotal = () => harness.database.prisma.certificateAuthority.count({ where: { genMode: 'CSR' } });
const notAfterOf = async (pem: string) => Date.parse(/Not After : (.+)/.exec(await certificateText(dir, pem))![1]);
const notBeforeOf = async (pem: string) => Date.parse(/Not Before: (.+)/.exec(await certificateText(dir, pem))![1]);

t.test('a leaf CertificateRequest: crash between sign and fetch, retry, Secret judged by openssl, renewal', async (t) => {
  const { cr } = await newRequest('web', false, 2160);
  const before = await certificateTotal();
  t.equal(await reconcileUntilReady(cr, 2), 3, 'ready on the third reconcile');
  t.equal(await certificateTotal(), before + 1, 'the retries after the crashes issued nothing more');

  const tls = pemBlocks(cr.status.certificate!);
  t.equal(tls.length, 2, 'tls.crt = leaf + issuing CA');
  const verified = await verifyStrict(dir, tls[0], cr.status.ca!, [tls[1]], ['-purpose', 'sslserver']);
  t.ok(verified.ok, `tls.crt verifies against ca.crt: ${verified.stderr}`);
  const lifetime = (await notAfterOf(tls[0])) - (await notBeforeOf(tls[0]));
  t.equal(lifetime, 2160 * 3_600_000, 'duration 2160h');

  // cert-manager renews at notAfter - renewBefore (default: a third of the duration): a new request, a new key.
  const renewBeforeMs = (2160 * 3_600_000) / 3;
  const needsRenewal = async (secretTlsCrt: string, controllerNow: number) =>
    controllerNow >= (await notAfterOf(pemBlocks(secretTlsCrt)[0])) - renewBeforeMs;
  const renewAt = (await notAfterOf(tls[0])) - renewBeforeMs;
  t.notOk(await needsRenewal(cr.status.certificate!, renewAt - 1000), 'not renewed before renewBefore');
  t.ok(await needsRenewal(cr.status.certificate!, renewAt + 1000), 'renewed once renewBefore is reached');
  const renewal = await newRequest('web', false, 2160);
  await reconcileUntilReady(renewal.cr, 0);
  t.not(renewal.cr.status.certificateId, cr.status.certificateId, 'a new certificate');
  t.not(pemBlocks(renewal.cr.status.certificate!)[0], tls[0]);
  const old = await sdk({
    method: 'GET',
    url: '/v1/private-certificates/{certificate_id}',
    pathParams: { certificate_id: cr.status.certificateId },
  });
  t.equal(old.status, 'ISSUED', 'the old certificate stays valid until it expires');
});

t.test('an isCA CertificateRequest: the new CA is fetched through the certificate routes; Istio plug-in CA', async (t) => {
  const { cr, keyFile } = await newRequest('istio-ca', true, 4380);
  const [certificatesBefore, casBefore] = [await certificateTotal(), await csrCaTotal()];
  t.equal(await reconcileUntilReady(cr, 1), 2, 'ready on the second reconcile');
  t.equal(await csrCaTotal(), casBefore + 1, 'one new CA despite the retry');
  t.equal(await certificateTotal(), certificatesBefore, 'no certificate row: it is a CA');

  const id = cr.status.certificateId!;
  const shown = await sdk({ method: 'GET', url: '/v1/private-certificates/{certificate_id}', pathParams: { certificate_id: id } });
  t.match(
    shown,
    { certificate_id: id, status: 'ISSUED', issuer_id: issuer.ca_id, gen_mode: 'CSR', key_algorithm: 'EC256' },
    'shown as a certificate',
  );
  const asCa = await sdk({ method: 'GET', url: '/v1/private-certificate-authorities/{ca_id}', pathParams: { ca_id: id } });
  t.match(asCa, { ca_id: id, type: 'SUBORDINATE', gen_mode: 'CSR', status: 'ACTIVED' }, 'and still as a CA');
  t.equal(shown.serial_number, asCa.serial_number);
  t.equal(shown.not_after - shown.not_before, 4380 * 3_600_000, 'duration 4380h');

  // Istio's cacerts from the Secret: ca-cert.pem, ca-key.pem (cert-manager's key), root-cert.pem, cert-chain.pem.
  const tls = pemBlocks(cr.status.certificate!);
  const files = {
    caCert: await dir.write('istio-ca-cert.pem', tls[0]),
    rootCert: await dir.write('istio-root-cert.pem', cr.status.ca!),
    certChain: await dir.write('istio-cert-chain.pem', `${cr.status.certificate}\n${cr.status.ca}`),
  };
  const chainVerified = await openssl(['verify', '-x509_strict', '-CAfile', files.rootCert, '-untrusted', files.certChain, files.caCert]);
  t.ok(chainVerified.ok, `ca-cert.pem verifies against root-cert.pem with cert-chain.pem: ${chainVerified.stderr}`);
  t.match(await certificateText(dir, tls[0]), /CA:TRUE, pathlen:0/, 'a CA that signs workloads only');
  const certKey = await openssl(['x509', '-in', files.caCert, '-noout', '-pubkey']);
  const ownKey = await openssl(['pkey', '-in', keyFile, '-pubout']);
  t.equal(certKey.stdout, ownKey.stdout, 'ca-key.pem is the key of ca-cert.pem');

  // istiod signs a workload with the plug-in CA; openssl judges it against the root.
  await opensslCsr(dir, 'workload', [...KEY_ARGS.p256], ['-subj', '/O=cluster.local']);
  const ext = await dir.write(
    'workload.ext',
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/app',
    ].join('\n'),
  );
  const signed = await opensslSign({
    csr: dir.file('workload.csr'),
    ca: files.caCert,
    caKey: keyFile,
    extFile: ext,
    out: dir.file('workload.pem'),
  });
  t.ok(signed.ok, signed.stderr);
  const workload = await openssl(['verify', '-CAfile', files.rootCert, '-untrusted', files.certChain, dir.file('workload.pem')]);
  t.ok(workload.ok, `a workload certificate verifies to the root: ${workload.stderr}`);

  const zip = await sdk({
    method: 'POST',
    url: '/v1/private-certificates/{certificate_id}/export',
    pathParams: { certificate_id: id },
    contentType: 'application/json',
    data: { type: 'ISTIO', is_compressed: 'false' },
  }).catch((error: { httpStatusCode: number }) => error);
  t.match(zip, { httpStatusCode: 400 }, 'ISTIO export needs a server-held key (cert-manager keeps its own)');
});

t.test('the certificate routes do not serve other CAs or other domains', async (t) => {
  const missing = (id: string, headers = harness.auth()) => app.inject({ method: 'GET', url: `/v1/private-certificates/${id}`, headers });
  t.equal((await missing(issuer.ca_id as string)).statusCode, 404, 'a server-generated subordinate is not a certificate');
  t.equal((await missing(root.ca_id as string)).statusCode, 404, 'nor a root');
  const { cr } = await newRequest('tenant-ca', true, 24);
  await reconcileUntilReady(cr, 0);
  t.equal(
    (await missing(cr.status.certificateId!, harness.auth('ffeeddccbbaa99887766554433221100'))).statusCode,
    404,
    'another domain sees nothing',
  );
});
