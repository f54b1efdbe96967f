/**
 * Create-by-CSR throughput over HTTP against a real Postgres, with a P-256 root and subordinate.
 *
 *   npx tsx bench/issue/run.ts [seconds=10] [concurrency=256]
 *
 * The Postgres server is DATABASE_URL's, else a throwaway cluster started for the run.
 *
 * Starts the app on a loopback port over a fresh database (dropped at the end), makes the CAs through the API,
 * then keeps `concurrency` requests in flight for `seconds` and prints throughput and latency percentiles as a
 * markdown row for RESULTS.md. The client (autocannon) runs in a child process; both share the machine's cores.
 */
import { buildApp } from '../../src/app.ts';
import { drive, resultTable } from '../load.ts';
import { mintAdminToken } from '../../src/auth/dev-token.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { webCryptoKeyParams } from '../../src/x509/algorithms.ts';
import { buildCsr } from '../../src/x509/csr.ts';
import { ecdsaRawToDer } from '../../src/x509/der.ts';
import { toPem } from '../../src/x509/pem.ts';
import { postgresTestDatabase, realPostgres } from '../../test/helpers/database.ts';
import { testConfig } from '../../test/helpers/app.ts';

const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 256);
const DISTINCT_CSRS = 64;

async function p256Csr(index: number): Promise<string> {
  const pair = (await crypto.subtle.generateKey(webCryptoKeyParams('EC256'), false, ['sign', 'verify'])) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  const signer = {
    keyAlgorithm: 'EC256' as const,
    sign: async (_hash: string, data: Uint8Array) =>
      ecdsaRawToDer(new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, data.slice())), 256),
  };
  return toPem('CERTIFICATE REQUEST', await buildCsr({ common_name: `bench-${index}.example.com` }, spki, signer, 'SHA256'));
}


const config = testConfig({ RATE_LIMIT_MAX: '100000000', DATABASE_POOL_SIZE: '10' });
const postgres = await realPostgres();
const database = await postgresTestDatabase(postgres.url);
const keyStores = createKeyStores({ masterKey: config.masterKey });
const app = await buildApp({ config, database, keyStores, logDestination: false });
const base = await app.listen({ host: '127.0.0.1', port: 0 });
const headers = { authorization: `Bearer ${mintAdminToken(app.jwt, config.defaultDomainId, 3600)}`, 'content-type': 'application/json' };

async function post(path: string, body: unknown): Promise<Record<string, string>> {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

try {
  const dn = (cn: string) => ({ common_name: cn, country: 'CN', state: 'zj', locality: 'hz', organization: 'bench', organizational_unit: 'ou' });
  const { ca_id: rootId } = await post('/v1/private-certificate-authorities', { type: 'ROOT', distinguished_name: dn('bench-root'), key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 2 } });
  const { ca_id: subId } = await post('/v1/private-certificate-authorities', { type: 'SUBORDINATE', issuer_id: rootId, distinguished_name: dn('bench-sub'), key_algorithm: 'EC256', signature_algorithm: 'SHA256', validity: { type: 'YEAR', value: 1 } });
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
  const issued = await database.prisma.certificate.count();
  console.log(resultTable('certs/s', concurrency, result));
  console.log(`certificates in the database: ${issued}`);
} finally {
  await app.close();
  await keyStores.software.close();
  await database.close();
  await postgres.stop();
}
process.exit(0);
