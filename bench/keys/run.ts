/**
 * Signatures per second of the key stores (software; PKCS#11 on a throwaway SoftHSM2 token), next to
 * `openssl speed` on the same machine. Prints markdown on stdout (progress on stderr):
 *   npx tsx bench/keys/run.ts > bench/keys/RESULTS.md
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import type { KeyStore } from '../../src/keystore/key-store.ts';
import { createPkcs11KeyStore } from '../../src/keystore/pkcs11-key-store.ts';
import { createSealer } from '../../src/keystore/sealing.ts';
import { createSoftwareKeyStore } from '../../src/keystore/software-key-store.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../src/x509/algorithms.ts';
import { SOFTHSM_LIBRARY, softHsmToken } from '../../test/keystore/support.ts';

const SECONDS_PER_RUN = 1.5;
const IN_FLIGHT = 8;
const ALGORITHMS: [KeyAlgorithm, HashAlgorithm][] = [
  ['EC256', 'SHA256'],
  ['EC384', 'SHA384'],
  ['EC521', 'SHA512'],
  ['RSA2048', 'SHA256'],
  ['RSA4096', 'SHA256'],
];
/** `openssl speed` names for the same keys, and how its report names them. */
const OPENSSL_SPEED: Partial<Record<KeyAlgorithm, { arg: string; row: RegExp }>> = {
  EC256: { arg: 'ecdsap256', row: /256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)/ },
  EC384: { arg: 'ecdsap384', row: /384 bits ecdsa \(nistp384\)\s+\S+s\s+\S+s\s+([\d.]+)/ },
  RSA2048: { arg: 'rsa2048', row: /rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)/ },
};

const data = randomBytes(1000); // about a TBSCertificate
const loadBefore = os.loadavg()[0];

/** Signatures per second with `inFlight` calls kept running for SECONDS_PER_RUN. */
async function signRate(sign: () => Promise<unknown>, inFlight: number): Promise<number> {
  await sign(); // warm: unseal/import or token lookup
  const start = performance.now();
  const end = start + SECONDS_PER_RUN * 1000;
  let count = 0;
  const worker = async () => {
    while (performance.now() < end) {
      await sign();
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return count / ((performance.now() - start) / 1000);
}

async function opensslSpeed(): Promise<Map<KeyAlgorithm, number>> {
  const entries = Object.entries(OPENSSL_SPEED) as [KeyAlgorithm, { arg: string; row: RegExp }][];
  const { stdout } = await promisify(execFile)('openssl', ['speed', '-seconds', '2', ...entries.map(([, { arg }]) => arg)]);
  return new Map(entries.map(([alg, { row }]) => [alg, Number(row.exec(stdout)?.[1] ?? NaN)]));
}

interface Row {
  store: string;
  alg: KeyAlgorithm;
  hash: HashAlgorithm;
  sequential: number;
  concurrent: number;
}

async function measure(name: string, store: KeyStore, algorithms = ALGORITHMS): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [alg, hash] of algorithms) {
    console.error(`${name} ${alg}…`);
    const { keyRef } = await store.generate(alg);
    const sign = () => store.sign(keyRef, alg, hash, data);
    rows.push({ store: name, alg, hash, sequential: await signRate(sign, 1), concurrent: await signRate(sign, IN_FLIGHT) });
    await store.destroy(keyRef);
  }
  await store.close();
  return rows;
}

const software = createSoftwareKeyStore({ sealer: createSealer(randomBytes(32)) });
const rows = await measure('software', software);
const pin = '1234';
const token = await softHsmToken('pca-bench', pin);
rows.push(...(await measure('pkcs11 (SoftHSM2, 4 sessions)', createPkcs11KeyStore({ library: SOFTHSM_LIBRARY, pin }))));
rows.push(
  ...(await measure('pkcs11 (SoftHSM2, 1 session)', createPkcs11KeyStore({ library: SOFTHSM_LIBRARY, pin, sessions: 1 }), [
    ['EC256', 'SHA256'],
  ])),
);
await rm(token.dir, { recursive: true, force: true });
console.error('openssl speed…');
const openssl = await opensslSpeed();
const { stdout: opensslVersion } = await promisify(execFile)('openssl', ['version']);

const rate = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a');
console.log(`# Key store signing speed

${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.version}, ${opensslVersion.trim()};
1-minute load average ${loadBefore.toFixed(1)} before the run, ${os.loadavg()[0].toFixed(1)} after.
Signing ${data.length} bytes; each figure is signatures per second over ${SECONDS_PER_RUN} s, with 1 call in flight
and with ${IN_FLIGHT}. \`openssl speed -seconds 2\` is one core, signing a digest, for reference.
Produced by \`npx tsx bench/keys/run.ts\` on a machine shared with other work: expect ±30 % between runs.

| store | key | hash | signs/s, 1 in flight | signs/s, ${IN_FLIGHT} in flight | openssl speed signs/s |
| --- | --- | --- | ---: | ---: | ---: |
${rows
  .map(
    (row) =>
      `| ${row.store} | ${row.alg} | ${row.hash} | ${rate(row.sequential)} | ${rate(row.concurrent)} | ${rate(openssl.get(row.alg) ?? NaN)} |`,
  )
  .join('\n')}
`);
