/**
 * OCSP responder throughput over HTTP: `POST /ocsp/{ca_id}` against a started server over a real Postgres
 * (DATABASE_URL, else a throwaway cluster), with a P-256 subordinate that issued 1,000 certificates, one of them
 * revoked. Measured three times: a good certificate and then the revoked one, each asked by distinct openssl-made
 * requests with nonces (POST, every answer signed anew), then the good one asked without a nonce in the GET form
 * (RFC 5019's profile: browsers, TLS stapling), whose signed answer the responder may reuse. Every status is looked
 * up in the database.
 *
 * The peer, in the same run: openssl's own responder (`openssl ocsp -index`, one process like the service) for an
 * openssl-made P-256 CA whose index lists 1,000 certificates, one revoked, asked the same two questions by the same
 * load client. It looks statuses up in an in-memory table read from index.txt (no database), signs with SHA-256, and
 * answers in HTTP/1.0, closing every connection (the service keeps them open). With BENCH_CLIENT=wrk the peer is
 * skipped, with the reason printed: wrk's address check (one connection opened and closed empty) stalls it.
 *
 *   npx tsx bench/ocsp/http.ts [seconds=8] [concurrency=16]
 *
 * BENCH_WORKERS=n measures the service as a separate server process with WORKERS=n (node:cluster) instead of the
 * app in this process; its CPU column then counts the primary and its workers.
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
  count = REQUESTS,
  nonce: string[] = [],
): Promise<Buffer[]> {
  const requests: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const made = await openssl(['ocsp', '-issuer', caFile, '-cert', leafFile, ...nonce, '-reqout', dir.file(`${name}-${i}.der`)]);
    if (!made.ok) throw new Error(made.stderr);
    requests.push(await dir.read(`${name}-${i}.der`));
  }
  return requests;
}

/** The questions asked: with nonces by POST, the same request without a nonce by GET (one URL). */
interface Questions {
  good: Buffer[];
  revoked: Buffer[];
  noNonce: Buffer;
}

/** One measured question: POSTed bodies, or the GET form's URL (`request` is the DER in both cases, for the judge). */
interface Asked {
  setting: string;
  url: string;
  method: 'POST' | 'GET';
  bodies: Buffer[];
}

/** RFC 6960 A.1: the DER request, base64 then URL-encoded, after the responder's URL. */
const getUrl = (base: string, request: Buffer) => `${base.replace(/\/$/, '')}/${encodeURIComponent(request.toString('base64'))}`;

const send = ({ url, method }: Asked, body: Buffer) =>
  fetch(url, { method, headers: OCSP_HEADERS, ...(method === 'POST' ? { body: new Uint8Array(body) } : {}) });

/** The status openssl reads in a sample answer, with its verdict on the signature (`verify OK` or the error). */
async function judge(asked: Asked, request: Buffer, caFile: string, trustFile: string): Promise<string> {
  const dir = await scratch('ocsp-judge');
  const answer = Buffer.from(await (await send(asked, request)).arrayBuffer());
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

/** A responder's URL, and how to stop that instance (a no-op for the service, which serves every question). */
type Responder = () => Promise<{ url: string; stop: () => void }>;

/** Measures the responder with each question in turn; rows named after `who`, with openssl's verdicts. */
async function goodAndRevoked(
  who: string,
  responder: Responder,
  questions: Questions,
  caFile: string,
  trustFile: string,
  serverCpuMs?: () => number,
) {
  const asked = (url: string): Asked[] => [
    { setting: 'good certificate', url, method: 'POST', bodies: questions.good },
    { setting: 'revoked certificate', url, method: 'POST', bodies: questions.revoked },
    { setting: 'good, no nonce, GET', url: getUrl(url, questions.noNonce), method: 'GET', bodies: [questions.noNonce] },
  ];
  const rows: [string, LoadResult][] = [];
  for (let at = 0; at < 3; at++) {
    const { url, stop } = await responder();
    try {
      const question = asked(url)[at];
      const verdict = await judge(question, question.bodies[0], caFile, trustFile);
      // One at a time: openssl's responder serves one connection at a time and stalls on one that sends nothing yet.
      for (const body of question.bodies.slice(0, 16)) await send(question, body).then((r) => r.arrayBuffer());
      const bodies = question.method === 'POST' ? question.bodies : [new Uint8Array(0)];
      rows.push([
        `${who}, ${question.setting} (openssl: ${verdict})`,
        await drive({ url: question.url, method: question.method, headers: OCSP_HEADERS, bodies, concurrency, seconds }, serverCpuMs),
      ]);
    } finally {
      stop();
    }
  }
  return rows;
}

/** Good with nonces, revoked with nonces, good without a nonce. */
async function questionsAbout(dir: Awaited<ReturnType<typeof scratch>>, caFile: string, goodFile: string, revokedFile: string) {
  return {
    good: await opensslRequests(dir, caFile, goodFile, 'good'),
    revoked: await opensslRequests(dir, caFile, revokedFile, 'revoked'),
    noNonce: (await opensslRequests(dir, caFile, goodFile, 'no-nonce', 1, ['-no_nonce']))[0],
  };
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
    const questions = await questionsAbout(dir, caFile, await dir.write('good.pem', await pem(ids[1])), revokedFile);
    const url = `${base}/ocsp/${subId}`;
    const who = process.env.BENCH_WORKERS ? `service (WORKERS=${process.env.BENCH_WORKERS})` : 'service';
    return await goodAndRevoked(who, async () => ({ url, stop: () => undefined }), questions, caFile, rootFile, server.serverCpuMs);
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
  const dir = await scratch('ocsp-peer');
  const questions = await questionsAbout(dir, pki.caPath, pki.leaves[1].path, pki.leaves[0].path);
  // A fresh responder per question: after a load, openssl's one-connection-at-a-time loop can stay stuck on a
  // connection the load client left, and the next question would wait for it.
  const responder: Responder = async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/`;
    const child = spawn(
      'openssl',
      ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'ca.pem', '-rkey', 'ca.key', '-CA', 'ca.pem'],
      { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => (output += String(chunk)));
    const stop = () => child.kill('SIGKILL');
    try {
      await answering(url, questions.good[0], () =>
        child.exitCode === null ? undefined : `openssl ocsp exited with ${child.exitCode}: ${output}`,
      );
    } catch (error) {
      stop();
      throw error;
    }
    return { url, stop };
  };
  // openssl 3.0 answers in HTTP/1.0 and closes each connection, so the client reconnects for every request.
  return await goodAndRevoked('openssl ocsp -index', responder, questions, pki.caPath, pki.caPath);
}

const ours = await service();
// Printed before the peer runs, so that a failing peer does not lose them.
console.log(resultTable('responses/s', concurrency, ...ours));
if (process.env.BENCH_CLIENT === 'wrk') {
  // wrk first opens and closes one connection to check the address; openssl's one-connection-at-a-time responder
  // then waits on that empty connection and answers nothing more (0 responses in 8 s, reproduced by hand).
  console.log('\nopenssl ocsp peer skipped: it stalls on the test connection wrk opens and closes before the load');
  process.exit(0);
}
const peer = await opensslResponder();
console.log(resultTable('responses/s', concurrency, ...ours, ...peer));
const rate = ([, result]: [string, LoadResult]) => answered2xx(result) / result.elapsedSeconds;
const ratio = (at: number) => (rate(ours[at]) / rate(peer[at])).toFixed(2);
console.log(`\nservice / openssl: good ${ratio(0)}, revoked ${ratio(1)}, good without a nonce (GET) ${ratio(2)}`);
process.exit(0);
