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
 * The Postgres server is DATABASE_URL's, else a throwaway cluster started for the run. With `policy`, the issuing
 * CA has an issuance policy (the shape of issue #19's example, 40 allowed and 10 denied DNS patterns, the CSRs'
 * names among the allowed) and its certificate carries name constraints, so every request is fully evaluated.
 *
 * Each setting starts the app on a loopback port over a fresh database (dropped at the end), makes the CAs through
 * the API, then keeps `concurrency` requests in flight for `seconds`. Prints one markdown table for RESULTS.md:
 * throughput counts 2xx answers only, and the failures cell names the statuses (429 under the default limit). The
 * client (autocannon) runs in a child process; both share the machine's cores.
 */
import { startBenchServer } from '../bench-server.ts';
import { drive, type LoadResult, resultTable } from '../load.ts';
import { buildCsr } from '../../src/x509/csr.ts';
import { toPem } from '../../src/x509/pem.ts';
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

/** One server (fresh database, CAs made through the API): each of `runs` measured in turn, with its issued count. */
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
      // Warm-up (JIT, pool connections, key cache) without keys; under the default limit it spends 16 of the minute's requests.
      await Promise.all(
        bodies.slice(0, 16).map((body) => fetch(url, { method: 'POST', headers, body: new Uint8Array(body) }).then((r) => r.text())),
      );
      const before = await server.database.prisma.certificate.count();
      // `[<id>]` becomes an id unique to each request (autocannon's idReplacement).
      const result = await drive({
        url,
        method: 'POST',
        headers: idempotencyKey ? { ...headers, 'idempotency-key': '[<id>]' } : headers,
        bodies,
        concurrency,
        seconds,
        uniqueIds: idempotencyKey,
      });
      const issued = (await server.database.prisma.certificate.count()) - before;
      rows.push([`${setting} (${issued} issued)`, result]);
    }
    return rows;
  } finally {
    await server.close();
  }
}

const lifted = await measure(false, [
  { setting: 'no Idempotency-Key, rate limit lifted', idempotencyKey: false, seconds },
  { setting: 'Idempotency-Key per request, rate limit lifted', idempotencyKey: true, seconds },
]);
const limited = await measure(true, [
  { setting: 'no Idempotency-Key, default rate limit', idempotencyKey: false, seconds: Math.max(seconds, 65) },
]);
console.log(resultTable('certs/s', concurrency, ...lifted, ...limited));
process.exit(0);
