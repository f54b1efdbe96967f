/**
 * Create-by-CSR throughput over HTTP against a real Postgres, with a P-256 root and subordinate, in three settings
 * measured one after another in the same run:
 *   - no Idempotency-Key, per-credential rate limit lifted (the issuing path alone);
 *   - an Idempotency-Key unique to each request (as cert-manager sends one), rate limit lifted;
 *   - no Idempotency-Key, the default rate limit (RATE_LIMIT_MAX per credential per minute): what one caller gets.
 *     It runs for at least 65 s, so the measurement spans a whole rate-limit window rather than only its burst.
 *
 *   npx tsx bench/issue/run.ts [seconds=10] [concurrency=256] [policy]
 *
 * The Postgres server is DATABASE_URL's, else a throwaway cluster started for the run. BENCH_WORKERS=n serves from
 * a separate server process with WORKERS=n (bench/bench-server.ts). With `policy`, the issuing
 * CA has an issuance policy (the shape of issue #19's example, 40 allowed and 10 denied DNS patterns, the CSRs'
 * names among the allowed) and its certificate carries name constraints, so every request is fully evaluated.
 *
 * Each setting starts the app on a loopback port over a fresh database (dropped at the end), makes the CAs through
 * the API, warms it with the same load for BENCH_WARMUP seconds (3 by default, not measured; 16 requests under the
 * default limit), then keeps `concurrency` requests in flight for `seconds`. Prints one markdown table for RESULTS.md:
 * throughput counts 2xx answers only, and the failures cell names the statuses (429 under the default limit). The
 * client (autocannon, or wrk: below) runs in its own process; both share the machine's cores.
 *
 * The peer, in the same run between the lifted settings and the default-limit one: `cfssl serve` (Debian's
 * golang-cfssl, installed with apt-get when missing; skipped with the reason printed if that fails) with an
 * openssl-made P-256 CA, signing the same CSRs for 30 days at `/api/v1/cfssl/sign`, driven by the same load client
 * at the same concurrency for the same time, after the same warm-up. It stores nothing. Its CPU column is the cfssl
 * process's. The ratios ours/cfssl (rate, p50, p99) are printed after the table. BENCH_CLIENT=wrk drives both with wrk
 * instead of autocannon (bench/wrk-client.ts): issue #12's load generator, cheaper per request, so more of the machine
 * is the servers'.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startBenchServer } from '../bench-server.ts';
import { commandAvailable } from '../commands.ts';
import { answered2xx, drive, type LoadResult, processCpuMs, resultTable, warmUp } from '../load.ts';
import { buildCsr } from '../../src/x509/csr.ts';
import { toPem } from '../../src/x509/pem.ts';
import { freePort } from '../../test/helpers/database.ts';
import { createOpensslPki, runOpenssl } from '../../test/x509/fixtures/openssl-pki.ts';
import { generateTestKey } from '../../test/x509/support.ts';

const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 256);
const withPolicy = process.argv[4] === 'policy';
const DISTINCT_CSRS = 64;

async function p256Csr(index: number): Promise<string> {
  const key = await generateTestKey('EC256');
  return toPem('CERTIFICATE REQUEST', await buildCsr({ common_name: `bench-${index}.example.com` }, key.spki, key.signer, 'SHA256'));
}

const csrs = await Promise.all(Array.from({ length: DISTINCT_CSRS }, (_, i) => p256Csr(i)));

/**
 * One server (fresh database, CAs made through the API): each of `runs` measured in turn, with the certificates and
 * CERT_ISSUE records it stored.
 */
async function measure(
  defaultRateLimit: boolean,
  runs: { setting: string; idempotencyKey: boolean; seconds: number }[],
): Promise<[string, LoadResult][]> {
  const server = await startBenchServer({ DATABASE_POOL_SIZE: '10' }, { defaultRateLimit });
  const { base, headers } = server;
  try {
    const { subId } = await server.p256Hierarchy(
      'bench',
      withPolicy
        ? { name_constraints: { permitted: { dns: ['example.com', '.svc.cluster.local'] }, excluded: { dns: ['.prod.example.com'] } } }
        : {},
    );
    if (withPolicy) {
      await server.call('PUT', `/v1/private-certificate-authorities/${subId}/issuance-policy`, {
        allowed: {
          dns: [...Array.from({ length: 39 }, (_, i) => `*.team-${i}.example.internal`), '*.example.com'],
          ip: ['10.0.0.0/8'],
          uri: ['spiffe://cluster.local/*'],
        },
        denied: { dns: Array.from({ length: 10 }, (_, i) => `*.prod-${i}.example.com`) },
        max_validity_days: 90,
        key_algorithms: ['EC256', 'RSA2048'],
        allowed_ekus: ['serverAuth', 'clientAuth'],
        require_name_constraints_for_cas: true,
      });
    }
    const bodies = csrs.map((csr) => Buffer.from(JSON.stringify({ issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } })));
    const url = `${base}/v1/private-certificates/csr`;
    const rows: [string, LoadResult][] = [];
    for (const { setting, idempotencyKey, seconds } of runs) {
      // `[<id>]` becomes an id unique to each request (autocannon's idReplacement, the wrk script's own).
      const load = {
        url,
        method: 'POST' as const,
        headers: idempotencyKey ? { ...headers, 'idempotency-key': '[<id>]' } : headers,
        bodies,
        concurrency,
        uniqueIds: idempotencyKey,
      };
      // Warm-up: the same load unmeasured (JIT, pool connections, key cache), as cfssl gets; under the default limit
      // only 16 requests, which leave the minute's allowance to the measurement.
      if (defaultRateLimit) {
        await Promise.all(
          bodies.slice(0, 16).map((body) => fetch(url, { method: 'POST', headers, body: new Uint8Array(body) }).then((r) => r.text())),
        );
      } else {
        await warmUp(load);
      }
      // Both counts in one statement (one snapshot), read until they hold still for 200 ms: requests in flight when a
      // load stops (the warm-up's too) commit after it, and belong to the run that sent them.
      const count = async () => {
        const [counts] = await server.database.prisma.$queryRaw<{ certificates: number; records: number }[]>`
          SELECT (SELECT count(*)::int FROM certificates) AS certificates,
                 (SELECT count(*)::int FROM billing_records WHERE usage_type = 'CERT_ISSUE') AS records`;
        return counts!;
      };
      const stored = async () => {
        for (let last = await count(); ; ) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          const now = await count();
          if (now.certificates === last.certificates && now.records === last.records) return now;
          last = now;
        }
      };
      const before = await stored();
      const result = await drive({ ...load, seconds }, server.serverCpuMs);
      const after = await stored();
      const issued = after.certificates - before.certificates;
      const billed = after.records - before.records;
      // Every answered certificate stored, besides at most one per request cut off in flight when the load stopped.
      const unanswered = issued - answered2xx(result);
      const exact = billed === issued && unanswered >= 0 && unanswered <= concurrency ? '' : ', NOT EXACT';
      const workers = process.env.BENCH_WORKERS ? `, WORKERS=${process.env.BENCH_WORKERS}` : '';
      rows.push([`${setting} (${issued} issued, ${billed} CERT_ISSUE records, ${unanswered} unanswered${exact}${workers})`, result]);
    }
    return rows;
  } finally {
    await server.close();
  }
}

/** POSTs `body` to `url` until cfssl answers with a certificate; its PEM. */
async function firstCertificate(url: string, body: string, exited: () => string | undefined): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const reason = exited();
    if (reason) throw new Error(reason);
    const answer = await fetch(url, { method: 'POST', body }).then(
      (response) => response.json() as Promise<{ success: boolean; result?: { certificate: string }; errors: unknown[] }>,
      () => undefined,
    );
    if (answer?.success && answer.result) return answer.result.certificate;
    if (answer) throw new Error(`cfssl refused the CSR: ${JSON.stringify(answer.errors)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} does not answer`);
}

/** `cfssl serve` over an openssl-made P-256 CA, signing the same CSRs under the same load; its row, or undefined. */
async function cfsslPeer(): Promise<[string, LoadResult] | undefined> {
  if (!commandAvailable('cfssl', ['version'], 'golang-cfssl')) return undefined;
  const pki = await createOpensslPki('EC256');
  const signing = { default: { expiry: '720h', usages: ['digital signature', 'server auth', 'client auth'] } };
  await writeFile(join(pki.dir, 'config.json'), JSON.stringify({ signing }));
  const port = await freePort();
  // -loglevel 3 (errors only): the service under test logs nothing either.
  const args = ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', 'ca.pem', '-ca-key', 'ca.key', '-config', 'config.json'];
  const cfssl = spawn('cfssl', [...args, '-loglevel', '3'], { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  cfssl.stderr.on('data', (chunk: Buffer) => (output += String(chunk)));
  try {
    const url = `http://127.0.0.1:${port}/api/v1/cfssl/sign`;
    const bodies = csrs.map((csr) => Buffer.from(JSON.stringify({ certificate_request: csr })));
    const exited = () => (cfssl.exitCode === null ? undefined : `cfssl serve exited with ${cfssl.exitCode}: ${output}`);
    const leaf = await firstCertificate(url, String(bodies[0]), exited);
    const leafFile = join(pki.dir, 'leaf.pem');
    await writeFile(leafFile, leaf);
    const verdict = (await runOpenssl(['verify', '-CAfile', pki.caPath, leafFile])).output.trim().replace(`${leafFile}: `, '');
    const load = { url, method: 'POST' as const, headers: { 'content-type': 'application/json' }, bodies, concurrency };
    await warmUp(load); // the same warm-up as the service's
    const result = await drive({ ...load, seconds }, () => processCpuMs(cfssl.pid!));
    return [`cfssl serve, nothing stored (openssl verify: ${verdict})`, result];
  } catch (error) {
    console.log(`cfssl peer skipped: ${(error as Error).message}`);
    return undefined;
  } finally {
    cfssl.kill('SIGKILL');
  }
}

const lifted = await measure(false, [
  { setting: 'no Idempotency-Key, rate limit lifted', idempotencyKey: false, seconds },
  { setting: 'Idempotency-Key per request, rate limit lifted', idempotencyKey: true, seconds },
]);
const peer = await cfsslPeer();
const limited = await measure(true, [
  { setting: 'no Idempotency-Key, default rate limit', idempotencyKey: false, seconds: Math.max(seconds, 65) },
]);
console.log(resultTable('certs/s', concurrency, ...lifted, ...(peer ? [peer] : []), ...limited));
if (peer) {
  const [, theirs] = peer;
  console.log('');
  const rate = (result: LoadResult) => answered2xx(result) / result.elapsedSeconds;
  for (const [setting, ours] of lifted) {
    console.log(
      `ours / cfssl at ${concurrency} in flight, ${setting}: rate ${(rate(ours) / rate(theirs)).toFixed(2)} ` +
        `(${rate(ours).toFixed(0)} / ${rate(theirs).toFixed(0)} certs/s), p50 ${ours.p50} / ${theirs.p50} ms, p99 ${ours.p99} / ${theirs.p99} ms`,
    );
  }
}
process.exit(0);
