/**
 * OCSP responder throughput over HTTP: `POST /ocsp/{ca_id}` against a started server over a real Postgres
 * (DATABASE_URL, else a throwaway cluster), with a P-256 subordinate that issued 1,000 certificates, one of them
 * revoked. Each request is a distinct openssl-style request (nonce), looked up in the database and signed by the
 * CA key through the key store.
 *
 *   npx tsx bench/ocsp/http.ts [seconds=8] [concurrency=32]
 */
import { startBenchServer } from '../bench-server.ts';
import { drive, resultTable } from '../load.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../../test/certificates/support.ts';
import { openssl } from '../../test/x509/support.ts';

const seconds = Number(process.argv[2] ?? 8);
const concurrency = Number(process.argv[3] ?? 32);
const CERTIFICATES = 1000;

const server = await startBenchServer();
const { base, call } = server;

try {
  const { rootId, subId } = await server.p256Hierarchy('ocsp');
  const dir = await scratch('ocsp-bench');
  const { csr } = await opensslCsr(dir, 'ocsp-leaf', [...KEY_ARGS.p256]);
  const ids: string[] = [];
  for (let i = 0; i < CERTIFICATES; i += 50) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => call('POST', '/v1/private-certificates/csr', { issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } })));
    ids.push(...batch.map((result) => result.certificate_id));
  }
  await call('POST', `/v1/private-certificates/${ids[0]}/revoke`, { reason: 'KEY_COMPROMISE' });
  const exported = await call('POST', `/v1/private-certificates/${ids[1]}/export`, { is_compressed: 'false', type: 'OTHER' });
  const caPem = (await call('POST', `/v1/private-certificate-authorities/${subId}/export`)).certificate;
  const caFile = await dir.write('ca.pem', caPem);
  const leafFile = await dir.write('leaf.pem', exported.certificate);
  const requests: Buffer[] = [];
  for (let i = 0; i < 32; i++) {
    const made = await openssl(['ocsp', '-issuer', caFile, '-cert', leafFile, '-reqout', dir.file(`req-${i}.der`)]);
    if (!made.ok) throw new Error(made.stderr);
    requests.push(await dir.read(`req-${i}.der`));
  }
  const url = `${base}/ocsp/${subId}`;
  const post = (body: Buffer) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(body) });

  const sample = Buffer.from(await (await post(requests[0])).arrayBuffer());
  const sampleFile = await dir.write('resp.der', sample);
  const check = await openssl(['ocsp', '-respin', sampleFile, '-reqin', dir.file('req-0.der'), '-issuer', caFile, '-CAfile', await dir.write('root.pem', (await call('POST', `/v1/private-certificate-authorities/${rootId}/export`)).certificate), '-resp_text']);
  await Promise.all(requests.slice(0, 16).map((body) => post(body).then((r) => r.arrayBuffer())));

  const result = await drive({ url, method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, bodies: requests, concurrency, seconds });
  const verdict = `${check.stdout}${check.stderr}`;
  console.log(`sample response: ${/Response verify OK/.test(verdict) ? 'openssl: Response verify OK' : verdict}, ${/Cert Status: (\w+)/.exec(verdict)?.[0] ?? 'no status'}`);
  console.log(resultTable('responses/s', concurrency, result));
} finally {
  await server.close();
}
process.exit(0);
