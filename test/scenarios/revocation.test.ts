/**
 * Scenario 3 (revocation is seen by relying parties), end to end against a started server whose PUBLIC_BASE_URL is
 * its own address: root and subordinate created over the API, CRL and OCSP switched on over the API, certificates
 * issued over the API, one revoked. The CRL is fetched by curl from the distribution point exactly as written in
 * the certificate and the OCSP responder asked by openssl at the URL exactly as written; openssl judges both.
 */
import t from 'tap';
import { openssl, pemBlocks } from '../certificates/support.ts';
import { opensslOcsp } from '../x509/support.ts';
import { CA, CERT, createHierarchy, curlToFile, startServer } from './support.ts';

const server = await startServer('revocation-scenario');
const { base, dir, call, ok } = server;
const { subId } = await createHierarchy(server, 'asm');
const subExport = await ok('POST', `${CA}/${subId}/export`);
const rootFile = await dir.write('root.pem', pemBlocks(subExport.certificate_chain).at(-1)!);
const subFile = await dir.write('sub.pem', subExport.certificate);
const chainFile = await dir.write('chain.pem', `${subExport.certificate}\n${pemBlocks(subExport.certificate_chain).at(-1)!}\n`);

async function issue(commonName: string): Promise<{ id: string; file: string }> {
  const { certificate_id: id } = await ok('POST', CERT, {
    issuer_id: subId,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { common_name: commonName, organization: 'huawei-cloud', country: 'CN' },
    subject_alternative_names: [{ type: 'DNS', value: 'cert-test.com' }],
    validity: { type: 'DAY', value: 300 },
  });
  const { certificate } = await ok('POST', `${CERT}/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  return { id, file: await dir.write(`${commonName}.pem`, certificate) };
}

/** The CDP and AIA extensions of a certificate as openssl prints them. */
async function revocationExtensions(certificateFile: string): Promise<string> {
  const result = await openssl(['x509', '-in', certificateFile, '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess']);
  if (!result.ok) throw new Error(`openssl x509 -ext: ${result.stderr}`);
  return result.stdout;
}

async function urlsIn(certificateFile: string): Promise<{ crl: string; ocsp: string }> {
  const text = await revocationExtensions(certificateFile);
  const crl = text.match(/X509v3 CRL Distribution Points:\s*\n\s*Full Name:\s*\n\s*URI:(\S+)\n/)?.[1];
  const ocsp = text.match(/OCSP - URI:(\S+)\n/)?.[1];
  if (!crl || !ocsp) throw new Error(`certificate lacks CDP or OCSP URL:\n${text}`);
  return { crl, ocsp };
}

/** curl fetches the CRL at `url` into a DER file; its content type and Cache-Control come back too. */
async function curlCrl(url: string, name: string): Promise<{ file: string; contentType: string; cacheControl: string }> {
  const file = dir.file(`${name}.crl`);
  const headersFile = dir.file(`${name}.headers`);
  const contentType = await curlToFile(url, file, ['-D', headersFile]);
  const headers = (await dir.read(`${name}.headers`)).toString('latin1');
  return { file, contentType, cacheControl: headers.match(/^cache-control: *(.*?)\r?$/im)?.[1] ?? '' };
}

/** openssl's text dump of a DER CRL file, and the CRL Number in it. */
async function crlText(file: string): Promise<{ text: string; crlNumber: number }> {
  const result = await openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text']);
  if (!result.ok) throw new Error(`openssl crl -text: ${result.stderr}`);
  const crlNumber = Number(result.stdout.match(/X509v3 CRL Number: *\n\s*(\d+)\n/)?.[1]);
  return { text: result.stdout, crlNumber };
}

let before: { id: string; file: string };
let revoked: { id: string; file: string };
let kept: { id: string; file: string };
let crlNumberBeforeRevocation: number;

t.test('step 0: before the switches a certificate carries neither URL; after them both, under the real address', async (t) => {
  before = await issue('issued-before-switches');
  const beforeText = await revocationExtensions(before.file);
  t.notMatch(beforeText, /CRL Distribution Points/, 'no CDP before the CRL was enabled');
  t.notMatch(beforeText, /OCSP/, 'no OCSP URL before the OCSP switch');
  t.match(beforeText, new RegExp(`CA Issuers - URI:${base}/ca/${subId}\\.crt\\n`), 'only the caIssuers URL, always written');

  t.equal((await call('POST', `${CA}/${subId}/crl/enable`, { valid_days: 7 })).status, 204, 'CRL enabled, valid_days 7');
  t.equal((await call('POST', `${CA}/${subId}/ocsp/switch`, { ocsp_switch: true })).status, 204, 'OCSP switched on');
  t.match(
    await ok('GET', `${CA}/${subId}`),
    { crl_configuration: { enabled: true, valid_days: 7, crl_dis_point: `${base}/crl/${subId}.crl` } },
    'the CA shows the distribution point under the real address',
  );
  revoked = await issue('ingress-server-crt');
  kept = await issue('still-good');
  for (const certificate of [revoked, kept]) {
    t.same(
      await urlsIn(certificate.file),
      { crl: `${base}/crl/${subId}.crl`, ocsp: `${base}/ocsp/${subId}` },
      "the started server's own address",
    );
  }

  // The CRL as a relying party sees it before the revocation.
  const fetched = await curlCrl((await urlsIn(revoked.file)).crl, 'before');
  const { text, crlNumber } = await crlText(fetched.file);
  t.match(text, /No Revoked Certificates\./);
  t.ok(crlNumber >= 1, `a CRL number: ${crlNumber}`);
  crlNumberBeforeRevocation = crlNumber;
});

t.test('steps 1-2: revoked with KEY_COMPROMISE; the CRL at the distribution point lists it, with a higher number', async (t) => {
  t.equal((await call('POST', `${CERT}/${revoked.id}/revoke`, { reason: 'KEY_COMPROMISE' })).status, 204);

  const fetched = await curlCrl((await urlsIn(revoked.file)).crl, 'after');
  t.equal(fetched.contentType, 'application/pkix-crl');
  const maxAge = Number(fetched.cacheControl.match(/^public, max-age=(\d+)$/)?.[1]);
  t.ok(maxAge > 7 * 86_400 - 120 && maxAge <= 7 * 86_400, `max-age until nextUpdate (7 days): ${fetched.cacheControl}`);

  const verified = await openssl(['crl', '-inform', 'DER', '-in', fetched.file, '-CAfile', chainFile, '-noout', '-verify']);
  t.match(verified.stderr + verified.stdout, /verify OK/, 'openssl crl -verify: signed by the subordinate');
  const { text, crlNumber } = await crlText(fetched.file);
  t.ok(crlNumber > crlNumberBeforeRevocation, `regenerated with a higher CRL number: ${crlNumberBeforeRevocation} -> ${crlNumber}`);
  const serial = (await openssl(['x509', '-in', revoked.file, '-noout', '-serial'])).stdout.trim().split('=')[1];
  t.match(
    text,
    new RegExp(
      `Serial Number: ${serial}\\n\\s+Revocation Date: .*\\n\\s+CRL entry extensions:\\n\\s+X509v3 CRL Reason Code:\\s*\\n\\s+Key Compromise\\n`,
      'i',
    ),
    'the revoked serial is listed, with its reason',
  );
  t.equal(text.match(/Serial Number:/g)?.length, 1, 'and nothing else');

  const crlPem = dir.file('sub-crl.pem');
  await openssl(['crl', '-inform', 'DER', '-in', fetched.file, '-out', crlPem]);
  const check = (leaf: string) => openssl(['verify', '-crl_check', '-CAfile', rootFile, '-untrusted', subFile, '-CRLfile', crlPem, leaf]);
  const refused = await check(revoked.file);
  t.notOk(refused.ok, 'the revoked certificate fails verification');
  t.match(refused.stdout + refused.stderr, /error 23 at 0 depth lookup: certificate revoked/);
  for (const good of [kept, before]) {
    const accepted = await check(good.file);
    t.equal(accepted.stdout, `${good.file}: OK\n`, `a certificate not revoked still verifies: ${accepted.stderr}`);
  }
});

t.test('step 3: the OCSP responder named in the certificate answers revoked and good, signature verified', async (t) => {
  const { ocsp } = await urlsIn(revoked.file);
  const result = await openssl(['ocsp', '-issuer', subFile, '-CAfile', chainFile, '-cert', revoked.file, '-cert', kept.file, '-url', ocsp]);
  const output = result.stdout + result.stderr;
  t.ok(result.ok, output);
  t.match(output, /Response verify OK/);
  t.match(output, new RegExp(`${revoked.file}: revoked\\n`));
  t.match(output, /Reason: keyCompromise/);
  t.match(output, new RegExp(`${kept.file}: good\\n`));
});

t.test('step 3, GET form (RFC 6960 A.1): base64 request in the path under the URL written in the certificate', async (t) => {
  const { ocsp } = await urlsIn(revoked.file);
  const requestFile = dir.file('get-req.der');
  await openssl(['ocsp', '-issuer', subFile, '-cert', revoked.file, '-reqout', requestFile]);
  const encoded = encodeURIComponent((await dir.read('get-req.der')).toString('base64'));
  const responseFile = dir.file('get-resp.der');
  const contentType = await curlToFile(`${ocsp}/${encoded}`, responseFile);
  t.equal(contentType, 'application/ocsp-response');
  const echoed = await openssl(['ocsp', '-respin', responseFile, '-reqin', requestFile, '-issuer', subFile, '-CAfile', chainFile]);
  t.match(echoed.stdout + echoed.stderr, /Response verify OK/, "signature verified, the request's nonce echoed");
  const status = await opensslOcsp(responseFile, { issuer: subFile, caFile: chainFile, certs: [revoked.file] });
  t.match(status.stdout, /: revoked\n/);
});

t.test('the authenticated CRL read reports the CRL the distribution point served', async (t) => {
  const body = (await ok('GET', `${CA}/${subId}/crl`)) as {
    crl: string;
    crl_number: number;
    this_update: number;
    next_update: number;
    revoked_count: number;
  };
  t.equal(body.revoked_count, 1);
  const served = await crlText((await curlCrl(`${base}/crl/${subId}.crl`, 'again')).file);
  t.equal(body.crl_number, served.crlNumber, 'the same CRL number as served');
  t.equal(body.next_update - body.this_update, 7 * 86_400_000);
  t.match(body.crl, /^-----BEGIN X509 CRL-----\r\n[\s\S]+-----END X509 CRL-----$/);
  const file = await dir.write('read.pem', body.crl);
  const verified = await openssl(['crl', '-in', file, '-CAfile', chainFile, '-noout', '-verify']);
  t.match(verified.stderr + verified.stdout, /verify OK/);
});
