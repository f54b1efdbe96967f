/**
 * "Never a stale `good`": two server processes on one Postgres, as several servers or Lambda containers share only
 * the database. A certificate revoked through one process is answered `revoked` by the other as soon as the revoke
 * call has returned, and by the revoking process itself right after it answered `good`; under a stream of requests
 * to the other process, no request sent after the revoke returned is answered `good`, whatever the interleaving.
 * Sample answers are judged by openssl (status and signature); the stream's by pkijs.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import t from 'tap';
import { KEY_ARGS, openssl, opensslCsr, scratch, seedCa } from '../certificates/support.ts';
import { opensslOcsp } from '../x509/support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { startSharedServer, type ServerProcess } from '../helpers/server-process.ts';

const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t));
const dir = await scratch('ocsp-processes');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-ocsp-processes-'));
t.teardown(async () => {
  await harness.close();
  await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

const root = await seedCa(harness, { commonName: 'OCSP Processes Root' });
const sub = await seedCa(harness, { commonName: 'OCSP Processes Sub', parent: root });
const subFile = await dir.write('sub.pem', sub.pem);
const chainFile = await dir.write('chain.pem', `${sub.pem}\n${root.pem}\n`);
const auth = { ...harness.auth(), 'content-type': 'application/json' };

async function startServer(): Promise<ServerProcess> {
  const server = await startSharedServer(harness, dataDir, { RATE_LIMIT_MAX: '100000000' });
  t.teardown(() => server.child.kill('SIGKILL'));
  return server;
}
const [a, b] = [await startServer(), await startServer()];

async function call(server: ServerProcess, method: string, url: string, body?: unknown) {
  const response = await fetch(`${server.base}${url}`, {
    method,
    headers: auth,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, string>) : {};
}

/** How a request is asked: POSTed with a nonce, or in the GET form without one (what a reused answer serves). */
type Form = 'POST' | 'GET';
interface Asked {
  id: string;
  requestFile: string;
  request: Buffer;
  form: Form;
}

const { csr } = await opensslCsr(dir, 'leaf', [...KEY_ARGS.p256]);
/** A certificate issued through process A, with an openssl OCSP request about it, asked in `form`. */
async function issued(name: string, form: Form): Promise<Asked> {
  const { certificate_id: id } = await call(a, 'POST', '/v1/private-certificates/csr', {
    issuer_id: sub.id,
    csr,
    validity: { type: 'DAY', value: 30 },
  });
  const { certificate } = await call(a, 'POST', `/v1/private-certificates/${id}/export`, { is_compressed: 'false', type: 'OTHER' });
  const requestFile = dir.file(`${name}-req.der`);
  const nonce = form === 'GET' ? ['-no_nonce'] : [];
  const leafFile = await dir.write(`${name}.pem`, certificate);
  const made = await openssl(['ocsp', '-issuer', subFile, '-cert', leafFile, ...nonce, '-reqout', requestFile]);
  if (!made.ok) throw new Error(made.stderr);
  return { id, requestFile, request: await dir.read(`${name}-req.der`), form };
}

const revoke = (id: string) => call(a, 'POST', `/v1/private-certificates/${id}/revoke`, { reason: 'KEY_COMPROMISE' });

async function ocspBytes(server: ServerProcess, { request, form }: Asked): Promise<Buffer> {
  const url = `${server.base}/ocsp/${sub.id}`;
  const response =
    form === 'GET'
      ? await fetch(`${url}/${encodeURIComponent(request.toString('base64'))}`)
      : await fetch(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: new Uint8Array(request) });
  if (response.status !== 200) throw new Error(`OCSP ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

let judged = 0;
/** openssl's verdict on `server`'s answer: the certificate status, and `verify OK` for the signature and nonce. */
async function statusFrom(server: ServerProcess, certificate: Asked): Promise<string> {
  const responseFile = await dir.write(`resp-${judged++}.der`, await ocspBytes(server, certificate));
  const check = await opensslOcsp(responseFile, { issuer: subFile, caFile: chainFile, request: certificate.requestFile, text: true });
  const text = `${check.stdout}${check.stderr}`;
  return `${/Cert Status: (\w+)/.exec(text)?.[1] ?? 'no status'}${/Response verify OK/.test(text) ? '' : `, not verified: ${text}`}`;
}

function basicResponse(der: Buffer): pkijs.BasicOCSPResponse {
  const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
  return pkijs.BasicOCSPResponse.fromBER(response.responseBytes!.response.valueBlock.valueHexView.slice());
}

/** The first SingleResponse's status, read by pkijs: good [0], revoked [1], unknown [2]. */
function pkijsStatus(der: Buffer): string {
  const tag = (basicResponse(der).tbsResponseData.responses[0].certStatus as asn1js.BaseBlock).idBlock.tagNumber;
  return ['good', 'revoked', 'unknown'][tag] ?? `tag ${tag}`;
}

/** How long the responder reuses a signed nonce-less answer (ocsp-responder.ts REUSE_SIGNED_MS). */
const REUSE_MS = 10_000;

t.test('revoked through one process: the other answers revoked at once, the revoking one too', async (t) => {
  for (const [name, form] of [
    ['first', 'POST'],
    ['second', 'POST'],
    ['third', 'POST'],
    ['first-get', 'GET'],
    ['second-get', 'GET'],
  ] as const) {
    const certificate = await issued(name, form);
    t.equal(await statusFrom(b, certificate), 'good', `${name}: B answers good before (its CA and statement warm)`);
    t.equal(await statusFrom(a, certificate), 'good', `${name}: A answers good before`);
    if (form === 'GET') {
      const first = await ocspBytes(b, certificate);
      const again = await ocspBytes(b, certificate);
      // producedAt is whole seconds, at most the signing time: an answer received within REUSE_MS of it was asked
      // while the first was still reusable, whatever the machine's load; one received later must be a new one.
      const signedAt = basicResponse(first).tbsResponseData.producedAt.getTime();
      if (Date.now() - signedAt < REUSE_MS) {
        t.same(again, first, `${name}: B reuses its signed good answer to the same nonce-less request (same bytes)`);
      } else {
        t.ok(basicResponse(again).tbsResponseData.producedAt.getTime() > signedAt, `${name}: past the reuse time, B signs anew`);
      }
    }
    await revoke(certificate.id);
    t.equal(await statusFrom(b, certificate), 'revoked', `${name}: B answers revoked once A's revoke returned`);
    t.equal(await statusFrom(a, certificate), 'revoked', `${name}: A answers revoked right after its own good`);
  }
});

for (const form of ['POST', 'GET'] as const)
  t.test(`a stream of ${form}s to B while A revokes: none sent after the revoke returned is answered good`, async (t) => {
    const certificate = await issued(`streamed-${form}`, form);
    let revokedReturned = false;
    let stopping = false;
    const after: string[] = [];
    const before: string[] = [];
    const clients = Array.from({ length: 8 }, async () => {
      while (!stopping) {
        const sentAfterRevoke = revokedReturned;
        const status = pkijsStatus(await ocspBytes(b, certificate));
        (sentAfterRevoke ? after : before).push(status);
      }
    });
    while (before.length < 20) await new Promise((resolve) => setImmediate(resolve));
    await revoke(certificate.id);
    revokedReturned = true;
    while (after.length < 100) await new Promise((resolve) => setImmediate(resolve));
    stopping = true;
    await Promise.all(clients);
    t.ok(
      before.length >= 20 && before.every((status) => status === 'good' || status === 'revoked'),
      `before and during the revoke: good or revoked (${before.length} answers)`,
    );
    t.ok(before.includes('good'), 'the stream saw the certificate good before the revoke');
    t.same([...new Set(after)], ['revoked'], `every one of ${after.length} answers to requests sent after the revoke returned is revoked`);
    t.equal(await statusFrom(b, certificate), 'revoked', 'openssl reads revoked, signature verified, from B after the stream');
  });
