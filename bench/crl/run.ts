/**
 * A CRL of N revoked entries end to end, as a deployment meets it: N rows in Postgres's `revocations`, the CA's
 * CRL marked stale, then `GET /crl/{id}.crl` from a started server (curl writes the body to a file), which signs
 * the CRL from the rows, stores it and serves it. Reports seconds and the server process's peak RSS, has openssl
 * verify the CRL, then times the peer on the same data in the same run: `openssl ca -gencrl` over an index.txt of
 * the same N revocations with a key of the same algorithm. Then the CRL fetched 20 times more, as relying parties
 * fetch it until its nextUpdate (served, not signed): mean time and server CPU per fetch, and a conditional GET.
 *
 * Run: npm run build && DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx bench/crl/run.ts [entries]
 * (the server runs from dist/, hence the build; the database named is the server's admin database: the bench
 * creates and drops its own). BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the server.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseCrlSummary } from '../../src/x509/crl.ts';
import { seedCa } from '../../test/certificates/support.ts';
import { createTestApp } from '../../test/helpers/app.ts';
import { freePort } from '../../test/helpers/database.ts';
import { sharedServerEnv, startServerProcess } from '../../test/helpers/server-process.ts';

const run = promisify(execFile);
const count = Number(process.argv[2] ?? 1_000_000);
if (!process.env.DATABASE_URL) {
  console.error('set DATABASE_URL to a Postgres server (its admin database); see the header of this file');
  process.exit(2);
}
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-crl-'));

const harness = await createTestApp();
const prisma = harness.database.prisma;
const root = await seedCa(harness, { commonName: 'bench-crl-root', keyAlgorithm: 'EC256' });
const ca = await seedCa(harness, { commonName: 'bench-crl-ca', keyAlgorithm: 'EC256', parent: root });

// 16-byte serials (as issued), dates a second apart, every reason a CRL may carry.
const seeded = performance.now();
await prisma.$executeRaw`
  INSERT INTO revocations (issuer_id, serial_number, revoked_at, reason_code, not_after)
  SELECT ${ca.id}::uuid, md5(i::text), timestamptz '2026-01-01' + i * interval '1 second',
         (ARRAY[0, 1, 2, 3, 4, 5, 6, 9, 10])[1 + i % 9], now() + interval '1 year'
    FROM generate_series(1, ${count}::int) AS i`;
await prisma.$executeRaw`VACUUM ANALYZE revocations`.catch(() => prisma.$executeRaw`ANALYZE revocations`);
await prisma.$executeRaw`UPDATE certificate_authorities SET crl_stale_since = now() WHERE id = ${ca.id}::uuid`;
const seedMs = performance.now() - seeded;

// The server is its own process, as deployed (built with tsx from src/), so its peak RSS is the path's alone.
const port = await freePort();
// BENCH_SERVER_NODE_ARGS passes Node options to the server alone, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
const server = await startServerProcess([...nodeArgs, 'dist/src/server.js'], {
  ...process.env,
  ...sharedServerEnv(harness, port),
  LOG_LEVEL: 'warn',
  LOG_FORMAT: 'json',
});
const address = server.base;
// A running server: one small CRL (the root's) signed and served first, so first-request costs are not counted.
await run('curl', ['-sf', '-o', '/dev/null', `${address}/crl/${root.id}.crl`]);
const highWater = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${server.child.pid}/status`, 'utf8'))![1]) * 1024;
// utime + stime of the server process in clock ticks (100 per second on Linux).
const cpuSeconds = async () => {
  const fields = (await readFile(`/proc/${server.child.pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const rssBefore = await highWater();
const cpuBefore = await cpuSeconds();
const crlPath = path.join(dir, 'pca.crl');
const began = performance.now();
const { stdout: status } = await run('curl', ['-s', '-o', crlPath, '-w', '%{http_code}', `${address}/crl/${ca.id}.crl`]);
const serveMs = performance.now() - began;
const peakRss = await highWater();
const serverCpu = (await cpuSeconds()) - cpuBefore;
// The same CRL fetched again, as relying parties do until its nextUpdate: served, not signed.
const REFETCHES = 20;
const refetchCpuBefore = await cpuSeconds();
const refetchBegan = performance.now();
for (let fetch = 0; fetch < REFETCHES; fetch++) await run('curl', ['-sf', '-o', '/dev/null', `${address}/crl/${ca.id}.crl`]);
const refetchMs = (performance.now() - refetchBegan) / REFETCHES;
const refetchCpuMs = (((await cpuSeconds()) - refetchCpuBefore) * 1000) / REFETCHES;
const { stdout: conditional } = await run('curl', [
  '-s',
  '-o',
  '/dev/null',
  '-w',
  '%{http_code}',
  '-H',
  'If-None-Match: *',
  `${address}/crl/${ca.id}.crl`,
]);
await server.stop();
if (status !== '200') throw new Error(`GET /crl answered ${status}`);

const der = new Uint8Array(await readFile(crlPath));
const summary = parseCrlSummary(der);
const caPath = path.join(dir, 'ca.pem');
await writeFile(caPath, ca.pem);
const verdict = (await run('openssl', ['crl', '-inform', 'DER', '-in', crlPath, '-noout', '-verify', '-CAfile', caPath])).stderr.trim();

console.log(`entries:                    ${summary.revokedCount.toLocaleString('en')} (rows seeded in ${seconds(seedMs)})`);
console.log(`CRL size:                   ${mib((await stat(crlPath)).size)}`);
console.log(`GET /crl (sign from rows):  ${seconds(serveMs)}`);
console.log(`server CPU during GET:      ${serverCpu.toFixed(2)} s`);
console.log(`server peak RSS before GET: ${mib(rssBefore)}`);
console.log(`server peak RSS:            ${mib(peakRss)}`);
console.log(`GET again (served), each:   ${refetchMs.toFixed(1)} ms, server CPU ${refetchCpuMs.toFixed(1)} ms (mean of ${REFETCHES})`);
console.log(`GET with If-None-Match:     ${conditional}`);
console.log(`openssl crl -verify:        ${verdict}`);

// The peer: openssl ca -gencrl over the same revocations, with its own P-256 CA.
const rows = await prisma.$queryRaw<{ line: string }[]>`
  SELECT string_agg(format(E'R\\t%s\\t%s,%s\\t%s\\tunknown\\t/CN=leaf',
           to_char(not_after AT TIME ZONE 'UTC', 'YYMMDDHH24MISS"Z"'),
           to_char(revoked_at AT TIME ZONE 'UTC', 'YYMMDDHH24MISS"Z"'),
           (ARRAY['unspecified','keyCompromise','CACompromise','affiliationChanged','superseded','cessationOfOperation',
                  'certificateHold','','','cessationOfOperation','cessationOfOperation'])[reason_code + 1],
           upper(serial_number)), E'\n' ORDER BY serial_number) || E'\n' AS line
    FROM revocations WHERE issuer_id = ${ca.id}::uuid`;
const index = createWriteStream(path.join(dir, 'index.txt'));
await new Promise<void>((resolve, reject) => index.end(rows[0].line.replace(/,unspecified\t/g, '\t'), () => resolve()).on('error', reject));
await writeFile(path.join(dir, 'crlnumber'), '01\n');
await writeFile(
  path.join(dir, 'ca.cnf'),
  `[ca]\ndefault_ca = peer\n[peer]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\n` +
    `certificate = ${dir}/peer.pem\nprivate_key = ${dir}/peer.key\ndefault_md = sha256\ndefault_crl_days = 7\n` +
    `crl_extensions = crl_ext\n[crl_ext]\nauthorityKeyIdentifier = keyid:always\n`,
);
await run('openssl', [
  'req',
  '-x509',
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:P-256',
  '-nodes',
  '-subj',
  '/CN=peer',
  '-keyout',
  path.join(dir, 'peer.key'),
  '-out',
  path.join(dir, 'peer.pem'),
  '-days',
  '30',
]);
const peerBegan = performance.now();
const peer = await run(
  '/usr/bin/time',
  ['-f', '%M', 'openssl', 'ca', '-config', path.join(dir, 'ca.cnf'), '-gencrl', '-out', path.join(dir, 'peer.pem.crl')],
  { maxBuffer: 1 << 20 },
);
const peerMs = performance.now() - peerBegan;
const peerRssKib = Number(peer.stderr.trim().split('\n').pop());
// openssl ca writes PEM only; the conversion is not timed.
await run('openssl', ['crl', '-in', path.join(dir, 'peer.pem.crl'), '-outform', 'DER', '-out', path.join(dir, 'peer.crl')]);
const peerCount = parseCrlSummary(new Uint8Array(await readFile(path.join(dir, 'peer.crl')))).revokedCount;

console.log(
  `peer openssl ca -gencrl:    ${seconds(peerMs)}, peak RSS ${mib(peerRssKib * 1024)} (${peerCount.toLocaleString('en')} entries)`,
);
console.log(`ratio (ours / peer):        ${(serveMs / peerMs).toFixed(2)}`);
console.log(
  `load average:               ${os
    .loadavg()
    .map((load) => load.toFixed(1))
    .join(' ')}`,
);

await harness.close();
await rm(dir, { recursive: true, force: true });
