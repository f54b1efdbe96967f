/**
 * The console's weight and load time: gzipped size of every file in dist/console, then Chromium loading /console/
 * signed in (token in sessionStorage) until the CA tree is on screen, cold (fresh browser profile) and warm.
 * Usage: npm run bench:console [-- runs]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { startBenchServer } from '../bench-server.ts';

const runs = Number(process.argv[2] ?? 10);
const root = path.resolve(import.meta.dirname, '..', '..');
execFileSync(process.execPath, [path.join(root, 'console', 'build.mjs')]);
const dist = path.join(root, 'dist', 'console');
let total = 0;
for (const name of readdirSync(dist)) {
  const bytes = readFileSync(path.join(dist, name));
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  total += gzipped;
  console.log(`${name.padEnd(12)} ${String(bytes.length).padStart(7)} B, ${String(gzipped).padStart(6)} B gzipped`);
}
console.log(`total gzipped: ${(total / 1024).toFixed(1)} KB (limit 300 KB)`);

const server = await startBenchServer();
const { rootId } = await server.p256Hierarchy('console');
for (let i = 0; i < 3; i++) await server.p256Hierarchy(`console-${i}`);
for (let i = 0; i < 20; i++) {
  await server.call('POST', '/v1/private-certificates', {
    issuer_id: rootId,
    distinguished_name: { common_name: `leaf-${i}` },
    validity: { type: 'DAY', value: 30 },
    key_algorithm: 'EC256',
  });
}
const token = server.headers.authorization.slice('Bearer '.length);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
async function measure(label: string, fresh: boolean) {
  const times: number[] = [];
  let context = await chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), 'pca-bench-chromium-')), {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  for (let run = 0; run < runs; run++) {
    if (fresh && run > 0) {
      await context.close();
      context = await chromium.launchPersistentContext(mkdtempSync(path.join(os.tmpdir(), 'pca-bench-chromium-')), {
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }
    const page = await context.newPage();
    await page.addInitScript((value) => sessionStorage.setItem('pca.token', value), token);
    await page.goto(`${server.base}/console/#/cas`);
    await page.waitForSelector('[data-test=ca-tree] [data-test=ca-node]');
    // From the navigation's start (the page's time origin) to the tree on screen, API calls included.
    times.push(await page.evaluate(() => performance.now()));
    await page.close();
  }
  await context.close();
  console.log(`${label}: median ${median(times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms over ${runs} loads`);
}
await measure('cold (fresh profile each load)', true);
await measure('warm (same profile, revalidated files)', false);
await server.close();
process.exit(0);
