/**
 * Builds and signs a 1,000,000-entry CRL with a P-256 CA key (entries from a generator, never a pre-built array),
 * reports time and peak RSS, then has openssl verify the result once (timed separately).
 * Run: npx tsx bench/crl/run.ts [entries]
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildCrl, CRL_REASON_CODES, parseCrlSummary, type RevokedEntry } from '../../src/x509/crl.ts';
import { createOpensslPki, openssl } from '../../test/x509/fixtures/openssl-pki.ts';

const count = Number(process.argv[2] ?? 1_000_000);
const pki = await createOpensslPki('EC256');
const start = new Date('2026-01-01T00:00:00Z').getTime();

/** Entries as the database would stream them: 16-byte serials in hex, distinct dates, every reason. */
function* revokedEntries(): Generator<RevokedEntry> {
  for (let i = 0; i < count; i++) {
    yield {
      serialNumber: `${(0x40000000 + i).toString(16)}9e3779b97f4a7c15a1b2c3d4`,
      revocationDate: new Date(start + i * 1000),
      reasonCode: CRL_REASON_CODES[i % CRL_REASON_CODES.length],
    };
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const rssBefore = process.memoryUsage().rss;
const began = performance.now();
const { der, revokedCount } = await buildCrl(
  {
    issuerName: pki.caSubjectDer,
    authorityKeyIdentifier: pki.caSubjectKeyIdentifier,
    crlNumber: 1n,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + 7 * 86_400_000),
    hash: 'SHA256',
    entries: revokedEntries(),
  },
  pki.caSigner,
);
const buildMs = performance.now() - began;
const peakRss = process.resourceUsage().maxRSS * 1024;

const summaryBegan = performance.now();
const summary = parseCrlSummary(der);
const summaryMs = performance.now() - summaryBegan;

const path = join(pki.dir, 'big.crl');
await writeFile(path, der);
const verifyBegan = performance.now();
const verdict = (await openssl(['crl', '-inform', 'DER', '-in', path, '-noout', '-verify', '-CAfile', pki.caPath])).trim();
const verifyMs = performance.now() - verifyBegan;
await rm(pki.dir, { recursive: true, force: true });

console.log(`entries:              ${revokedCount.toLocaleString('en')}`);
console.log(`CRL size:             ${mib(der.length)}`);
console.log(`build + sign:         ${(buildMs / 1000).toFixed(2)} s`);
console.log(`RSS before build:     ${mib(rssBefore)}`);
console.log(`peak RSS (process):   ${mib(peakRss)}`);
console.log(`parseCrlSummary:      ${summaryMs.toFixed(0)} ms (revokedCount ${summary.revokedCount.toLocaleString('en')})`);
console.log(`openssl crl -verify:  ${(verifyMs / 1000).toFixed(2)} s -> ${verdict}`);
