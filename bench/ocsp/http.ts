/**
 * OCSP responder throughput over HTTP: `POST /ocsp/{ca_id}` against a started server over a real Postgres
 * (DATABASE_URL, else a throwaway cluster), with a P-256 subordinate that issued 1,000 certificates, one of them
 * revoked. Measured twice, asking about a good certificate and then about the revoked one. Each request is a
 * distinct openssl-made request (nonce), looked up in the database and signed by the CA key through the key store.
 *
 * The peer, in the same run: openssl's own responder (`openssl ocsp -index`, one process like the service) for an
 * openssl-made P-256 CA whose index lists 1,000 certificates, one revoked, asked the same two questions by the same
 * load client. It looks statuses up in an in-memory table read from index.txt (no database), signs with SHA-256, and
 * answers in HTTP/1.0, closing every connection (the service keeps them open).
 *
 *   npx tsx bench/ocsp/http.ts [seconds=8] [concurrency=16]
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startBenchServer } from '../bench-server.ts';
import { answered2xx, drive, type LoadResult, resultTable } from '../load.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../../test/certificates/support.ts';
import { createOpensslPki } from '../../test/x509/fixtures/openssl-pki.ts';
import { openssl } from '../../test/x509/support.ts';

const seconds = Number(process.argv[2] ?? 8);
const concurrency = Number(process.argv[3] ?? 16);
const CERTIFICATES = 1000;
const REQUESTS = 32;
const OCSP_HEADERS = { 'content-type': 'application/ocsp-request' };

/** `count` distinct openssl requests (each with its own nonce) about the certificate in `leafFile`. */
async function opensslRequests(
  dir: Awaited<ReturnType<typeof scratch>>,
  caFile: string,
  leafFile: string,
  name: string,
): Promise<Buffer[]> {
  const requests: Buffer[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const made = await openssl(['ocsp', '-issuer', caFile, '-cert', leafFile, '-reqout', dir.file(`${name}-${i}.der`)]);
    if (!made.ok) throw new Error(made.stderr);
    requests.push(await dir.read(`${name}-${i}.der`));
  }
  return requests;
}

/** The status openssl reads in a sample answer, with its verdict on the signature (`verify OK` or the error). */
async function judge(url: string, headers: Record<string, string>, request: Buffer, caFile: string, trustFile: string): Promise<string> {
  const dir = await scratch('ocsp-judge');
  const answer = Buffer.from(await (await fetch(url, { method: 'POST', headers, body: new Uint8Array(request) })).arrayBuffer());
  const check = await openssl([
    'ocsp',
    '-respin',
    await dir.write('resp.der', answer),
    '-reqin',
    await dir.write('req.der', request),
    '-issuer',
    caFile,
    '-CAfile',
    trustFile,
    '-resp_text',
  ]);
  const text = `${check.stdout}${check.stderr}`;
  const status = /Cert Status: (\w+)/.exec(text)?.[1] ?? 'no status';
  return `${status}, ${/Response verify OK/.test(text) ? 'verify OK' : text}`;
}

/** Measures `url` with the good and the revoked requests in turn; rows named after `who`, with openssl's verdicts. */
async function goodAndRevoked(
  who: string,
  url: string,
  headers: Record<string, string>,
  sets: { good: Buffer[]; revoked: Buffer[] },
  caFile: string,
  trustFile: string,
) {
  const rows: [string, LoadResult][] = [];
  for (const [status, requests] of Object.entries(sets)) {
    const verdict = await judge(url, headers, requests[0], caFile, trustFile);
    // One at a time: openssl's responder serves one connection at a time and stalls on one that sends nothing yet.
    for (const body of requests.slice(0, 16))
      await fetch(url, { method: 'POST', headers, body: new Uint8Array(body) }).then((r) => r.arrayBuffer());
    rows.push([
      `${who}, ${status} certificate (openssl: ${verdict})`,
      await drive({ url, method: 'POST', headers, bodies: requests, concurrency, seconds }),
    ]);
  }
  return rows;
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Resolves once `url` answers `request` (polled: openssl's responder stops at a connection that sends no request). */
async function answering(url: string, request: Buffer, failure: () => string | undefined): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const reason = failure();
    if (reason) throw new Error(reason);
    const answered = await fetch(url, { method: 'POST', headers: OCSP_HEADERS, body: new Uint8Array(request) }).then(
      (r) => r.ok,
      () => false,
    );
    if (answered) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} does not answer`);
}

/** The service: 1,000 certificates of a P-256 subordinate, the first revoked. */
async function service(): Promise<[string, LoadResult][]> {
  const server = await startBenchServer();
  const { base, call } = server;
  try {
    const { rootId, subId } = await server.p256Hierarchy('ocsp');
    const dir = await scratch('ocsp-bench');
    const { csr } = await opensslCsr(dir, 'ocsp-leaf', [...KEY_ARGS.p256]);
    const ids: string[] = [];
    for (let i = 0; i < CERTIFICATES; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () =>
          call('POST', '/v1/private-certificates/csr', { issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } }),
        ),
      );
      ids.push(...batch.map((result) => result.certificate_id));
    }
    const pem = async (id: string) =>
      (await call('POST', `/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' })).certificate;
    // Exported first: a revoked certificate can no longer be exported.
    const revokedFile = await dir.write('revoked.pem', await pem(ids[0]));
    await call('POST', `/v1/private-certificates/${ids[0]}/revoke`, { reason: 'KEY_COMPROMISE' });
    const caFile = await dir.write('ca.pem', (await call('POST', `/v1/private-certificate-authorities/${subId}/export`)).certificate);
    const rootFile = await dir.write('root.pem', (await call('POST', `/v1/private-certificate-authorities/${rootId}/export`)).certificate);
    const sets = {
      good: await opensslRequests(dir, caFile, await dir.write('good.pem', await pem(ids[1])), 'good'),
      revoked: await opensslRequests(dir, caFile, revokedFile, 'revoked'),
    };
    return await goodAndRevoked('service', `${base}/ocsp/${subId}`, OCSP_HEADERS, sets, caFile, rootFile);
  } finally {
    await server.close();
  }
}

/** The peer: `openssl ocsp -index` over 1,000 index entries of an openssl-made P-256 CA, leaf1 revoked, leaf2 good. */
async function opensslResponder(): Promise<[string, LoadResult][]> {
  const pki = await createOpensslPki('EC256');
  const expiry = '301231235959Z';
  const entries = Array.from(
    { length: CERTIFICATES - 2 },
    (_, i) => `V\t${expiry}\t\t${(0x10000000 + i).toString(16).toUpperCase()}\tunknown\t/CN=filler-${i}`,
  );
  entries.push(`R\t${expiry}\t251201000000Z,keyCompromise\t${pki.leaves[0].serialHex.toUpperCase()}\tunknown\t/CN=leaf1.example.com`);
  entries.push(`V\t${expiry}\t\t${pki.leaves[1].serialHex.toUpperCase()}\tunknown\t/CN=leaf2.example.com`);
  await writeFile(join(pki.dir, 'index.txt'), `${entries.join('\n')}\n`);
  const port = await freePort();
  const dir = await scratch('ocsp-peer');
  const sets = {
    good: await opensslRequests(dir, pki.caPath, pki.leaves[1].path, 'good'),
    revoked: await opensslRequests(dir, pki.caPath, pki.leaves[0].path, 'revoked'),
  };
  const url = `http://127.0.0.1:${port}/`;
  const responder = spawn(
    'openssl',
    ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem'],
    { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    let output = '';
    responder.stderr.on('data', (chunk: Buffer) => (output += String(chunk)));
    await answering(url, sets.good[0], () =>
      responder.exitCode === null ? undefined : `openssl ocsp exited with ${responder.exitCode}: ${output}`,
    );
    // openssl 3.0 answers in HTTP/1.0 and closes each connection, so the client reconnects for every request.
    return await goodAndRevoked('openssl ocsp -index', url, OCSP_HEADERS, sets, pki.caPath, pki.caPath);
  } finally {
    responder.kill('SIGKILL');
  }
}

const ours = await service();
// Printed before the peer runs, so that a failing peer does not lose them.
console.log(resultTable('responses/s', concurrency, ...ours));
const peer = await opensslResponder();
console.log(resultTable('responses/s', concurrency, ...ours, ...peer));
const rate = ([, result]: [string, LoadResult]) => answered2xx(result) / result.elapsedSeconds;
console.log(
  `\nservice / openssl: good ${(rate(ours[0]) / rate(peer[0])).toFixed(2)}, revoked ${(rate(ours[1]) / rate(peer[1])).toFixed(2)}`,
);
process.exit(0);
