/**
 * Create-by-CSR throughput over HTTP against a real Postgres, with a P-256 root and subordinate.
 *
 *   npx tsx bench/issue/run.ts [seconds=10] [concurrency=256] [policy]
 *
 * The Postgres server is DATABASE_URL's, else a throwaway cluster started for the run. With `policy`, the issuing
 * CA has an issuance policy (the shape of issue #19's example, 40 allowed and 10 denied DNS patterns, the CSRs'
 * names among the allowed) and its certificate carries name constraints, so every request is fully evaluated.
 *
 * Starts the app on a loopback port over a fresh database (dropped at the end), makes the CAs through the API,
 * then keeps `concurrency` requests in flight for `seconds` and prints throughput and latency percentiles as a
 * markdown row for RESULTS.md. The client (autocannon) runs in a child process; both share the machine's cores.
 */
import { startBenchServer } from '../bench-server.ts';
import { drive, resultTable } from '../load.ts';
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

const server = await startBenchServer({ DATABASE_POOL_SIZE: '10' });
const { base, headers } = server;

try {
  const { subId } = await server.p256Hierarchy('bench', withPolicy ? { name_constraints: { permitted: { dns: ['example.com', '.svc.cluster.local'] }, excluded: { dns: ['.prod.example.com'] } } } : {});
  if (withPolicy) {
    await server.call('PUT', `/v1/private-certificate-authorities/${subId}/issuance-policy`, {
      allowed: { dns: [...Array.from({ length: 39 }, (_, i) => `*.team-${i}.example.internal`), '*.example.com'], ip: ['10.0.0.0/8'], uri: ['spiffe://cluster.local/*'] },
      denied: { dns: Array.from({ length: 10 }, (_, i) => `*.prod-${i}.example.com`) },
      max_validity_days: 90,
      key_algorithms: ['EC256', 'RSA2048'],
      allowed_ekus: ['serverAuth', 'clientAuth'],
      require_name_constraints_for_cas: true,
    });
  }
  const csrs = await Promise.all(Array.from({ length: DISTINCT_CSRS }, (_, i) => p256Csr(i)));
  const bodies = csrs.map((csr) => JSON.stringify({ issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } }));

  // Warm-up: JIT, pool connections, key cache.
  await Promise.all(bodies.slice(0, 16).map((body) => fetch(`${base}/v1/private-certificates/csr`, { method: 'POST', headers, body }).then((r) => r.text())));

  const result = await drive({
    url: `${base}/v1/private-certificates/csr`,
    method: 'POST',
    headers,
    bodies: bodies.map((body) => Buffer.from(body)),
    concurrency,
    seconds,
  });
  const issued = await server.database.prisma.certificate.count();
  console.log(resultTable('certs/s', concurrency, result));
  console.log(`certificates in the database: ${issued}`);
} finally {
  await server.close();
}
process.exit(0);
