/**
 * The console in a real Chromium (Debian's, driven by playwright-core) against started servers: a development
 * server (sign in with the token `npm run dev-token` prints) for the whole tour, and a production one (NODE_ENV=production, real
 * keys) for a smoke run. Every request the page makes is recorded and must be a console file or an operation of
 * openapi/openapi.yaml. Certificates the console downloads are judged by openssl. Screenshots of each page go
 * to test-output/console/ (git-ignored).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fastifyJwt from '@fastify/jwt';
import Fastify from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import t, { type Test } from 'tap';
import pg from 'pg';
import { parse } from 'yaml';
import { mintAdminToken } from '../../src/auth/dev-token.ts';
import { jwtPluginOptions } from '../../src/auth/jwt.ts';
import { loadConfig } from '../../src/config.ts';
import { KEY_ARGS, opensslCsr, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { createEmptyDatabase, freePort, realPostgresOrSkipFile } from '../helpers/database.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  t.comment(`skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  t.pass('skipped: Chromium is not installed');
  process.exit(0);
}
const { chromium } = await import('playwright-core');

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const SHOTS = path.join(ROOT, 'test-output', 'console');
mkdirSync(SHOTS, { recursive: true });
// The console the servers serve is built from the current sources.
execFileSync(process.execPath, [path.join(ROOT, 'console', 'build.mjs')]);

/** Every documented operation as a method and a path pattern. */
const OPERATIONS = Object.entries(
  parse(readFileSync(path.join(ROOT, 'openapi', 'openapi.yaml'), 'utf8')).paths as Record<string, object>,
).flatMap(([template, operations]) =>
  Object.keys(operations).map((method) => ({
    method: method.toUpperCase(),
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  })),
);
const documented = (method: string, pathname: string) => OPERATIONS.some((op) => op.method === method && op.pattern.test(pathname));

// A real Postgres (DATABASE_URL's, else a throwaway cluster): it starts in seconds where a fresh embedded PGlite
// takes far longer on a loaded machine.
const postgres = await realPostgresOrSkipFile(t);
t.teardown(() => postgres.stop());

/** The server entry itself (it migrates its fresh database at start). */
async function startServer(env: Record<string, string>): Promise<ServerProcess & { env: NodeJS.ProcessEnv }> {
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-console-'));
  const databaseUrl = await createEmptyDatabase(postgres.url);
  const serverEnv = {
    ...process.env,
    PORT: String(port),
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    RUN_JOBS: 'false',
    LOG_LEVEL: 'warn',
    ...env,
  };
  return { ...(await startServerProcess(['--import', 'tsx', 'src/server.ts'], serverEnv)), env: serverEnv };
}

/** A development server and the admin token `npm run dev-token` prints for it (the server prints it to a terminal only). */
async function startDevServer(t: Test) {
  const server = await startServer({});
  t.teardown(() => server.child.kill('SIGKILL'));
  const token = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/dev-token.ts'], {
    cwd: ROOT,
    env: server.env,
    encoding: 'utf8',
  }).trim();
  return { server, token };
}

/** A JSON call of the API as any client makes it: the fixtures the console is then shown. */
async function callApi<T = any>(base: string, token: string, method: string, pathname: string, body?: unknown): Promise<T> {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${pathname}: ${response.status} ${await response.text()}`);
  return (response.status === 204 ? {} : await response.json()) as T;
}

/** Yearly/monthly CAs bought for a month (§4.2.2): each PENDING and unconfigured. */
async function orderCas(base: string, token: string, count: number, autoRenew: 0 | 1): Promise<string[]> {
  const { ca_ids } = await callApi<{ ca_ids: string[] }>(base, token, 'POST', '/v1/private-certificate-authorities/order', {
    cloud_service_type: 'hws.service.type.ccm',
    charging_mode: 0,
    period_type: 2,
    period_num: 1,
    is_auto_renew: autoRenew,
    subscription_num: count,
    product_infos: [
      {
        cloud_service_type: 'hws.service.type.ccm',
        resource_type: 'hws.resource.type.pca.duration',
        resource_spec_code: 'ca.duration',
      },
    ],
  });
  return ca_ids;
}

const browserDir = mkdtempSync(path.join(os.tmpdir(), 'pca-chromium-'));
const context: BrowserContext = await chromium.launchPersistentContext(browserDir, {
  executablePath: CHROMIUM,
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
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
t.teardown(() => context.close());

/** A page that records every request it makes and every confirmation it asks, and accepts each confirmation. */
async function openPage(): Promise<{
  page: Page;
  requests: { method: string; url: URL }[];
  scriptErrors: string[];
  dialogs: { messages: string[] };
}> {
  const page = await context.newPage();
  page.setDefaultTimeout(60_000);
  const requests: { method: string; url: URL }[] = [];
  const scriptErrors: string[] = [];
  const dialogs = { messages: [] as string[] };
  page.on('request', (request) => requests.push({ method: request.method(), url: new URL(request.url()) }));
  page.on('dialog', (dialog) => {
    dialogs.messages.push(dialog.message());
    void dialog.accept();
  });
  // A CSP violation is reported on the console; failed API calls (4xx shown to the user) are expected.
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) scriptErrors.push(message.text());
  });
  page.on('pageerror', (error) => scriptErrors.push(error.message));
  return { page, requests, scriptErrors, dialogs };
}

function checkRequests(t: Test, requests: { method: string; url: URL }[], base: string) {
  const foreign = requests.filter(({ url }) => url.origin !== base && url.protocol !== 'blob:' && url.protocol !== 'data:');
  t.same(
    foreign.map(({ url }) => url.href),
    [],
    'no request leaves the origin',
  );
  const api = requests.filter(({ url }) => url.origin === base && url.pathname !== '/console' && !url.pathname.startsWith('/console/'));
  t.ok(api.length > 0, `${api.length} API requests recorded`);
  const undocumented = api
    .filter(({ method, url }) => !documented(method, url.pathname))
    .map(({ method, url }) => `${method} ${url.pathname}`);
  t.same(undocumented, [], 'every API request is an operation of openapi.yaml');
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** The names of the page's form controls a screen reader could not name: no label around them, no aria-label. */
const unnamedControls = (page: Page) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll('input, select, textarea'))
      .filter((control) => !control.closest('label') && !control.getAttribute('aria-label'))
      .map((control) => control.getAttribute('name') ?? control.outerHTML.slice(0, 60)),
  );

async function signIn(page: Page, token: string) {
  await page.fill('textarea[name=token]', token);
  await page.click('[data-test=signin-token] button');
}

async function fillDn(page: Page, commonName: string) {
  await page.fill('input[name=common_name]', commonName);
  await page.fill('input[name=organization]', 'console-test');
  await page.fill('input[name=organizational_unit]', 'platform');
  await page.fill('input[name=state]', 'zhejiang');
  await page.fill('input[name=locality]', 'hangzhou');
}

const statusOf = (page: Page) => page.locator('h2 .badge').first();

/**
 * Where each shown column of the CA tree starts (its cells' left edges, by column): one position per column when the
 * columns line up. The name starts at each row's indent, and the paid period has a row of its own on narrower screens.
 */
const treeColumns = (page: Page) =>
  page.evaluate(() => {
    const lefts: Record<string, number[]> = {};
    for (const cell of Array.from(document.querySelectorAll<HTMLElement>('[data-test=ca-node] > [class*="node-"]'))) {
      const column = /node-(\w+)/.exec(cell.className)![1];
      if (column === 'name' || column === 'prepaid' || cell.getClientRects().length === 0) continue;
      lefts[column] = [...new Set([...(lefts[column] ?? []), Math.round(cell.getBoundingClientRect().left)])];
    }
    return lefts;
  });
const misaligned = (columns: Record<string, number[]>) => Object.entries(columns).filter(([, lefts]) => lefts.length !== 1);

/** The document's width against the window's: wider scrolls sideways. */
const widths = (page: Page) =>
  page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));

/** The tab's title once it reads `expected`, else as it reads 5 s on (a page sets it just after it renders). */
const titleOf = (page: Page, expected: string) =>
  page
    .waitForFunction((title) => document.title === title, expected, { timeout: 5_000 })
    .then(
      () => page.title(),
      () => page.title(),
    );

t.test('the console tour against a development server', async (t) => {
  const { server, token } = await startDevServer(t);
  t.match(token, /^eyJ/, 'npm run dev-token printed a token');
  const { page, requests, scriptErrors, dialogs } = await openPage();
  const dir = await scratch('pca-console-');

  const started = Date.now();
  await page.goto(`${server.base}/console`);
  await page.waitForSelector('[data-test=signin-token]');
  const navigation = await page.evaluate(() => JSON.stringify(performance.getEntriesByType('navigation')[0]?.toJSON()));
  t.comment(
    `sign-in page shown ${Date.now() - started} ms after navigation; load event at ${Math.round(JSON.parse(navigation).loadEventEnd)} ms`,
  );
  await shot(page, '01-sign-in');
  t.equal(await titleOf(page, 'Sign in — Private CA'), 'Sign in — Private CA', 'the sign-in page has its own title');

  // A wrong token: the contract's error, and no session.
  await page.fill('textarea[name=token]', 'not-a-token');
  await page.click('[data-test=signin-token] button');
  await t.resolveMatch(page.textContent('[data-test=error]'), /^APIG\.0303: invalid token/, 'a refused token shows the contract error');

  await signIn(page, token);
  await page.waitForSelector('text=No CA yet');

  // Create a root, then a subordinate under it.
  await page.click('button:has-text("Create CA")');
  await fillDn(page, 'console-root');
  await page.click('[data-test=create-ca] button[type=submit]');
  await page.waitForSelector('[data-test=ca-node]:has-text("console-root")');
  await page.click('button:has-text("Create CA")');
  await page.selectOption('select[name=type]', 'SUBORDINATE');
  await page.selectOption('select[name=issuer_id]', { label: 'console-root' });
  await fillDn(page, 'console-issuing');
  await page.fill('input[name=validity_value]', '2');
  await page.click('[data-test=create-ca] button[type=submit]');
  await page.waitForSelector('.tree ul [data-test=ca-node]:has-text("console-issuing")');
  t.match(
    await page.textContent('.tree ul [data-test=ca-node]'),
    /SUBORDINATE\s*ACTIVED\s*EC256\s*path/,
    'the subordinate sits under the root with its status and algorithm',
  );
  const wideColumns = await treeColumns(page);
  t.same(Object.keys(wideColumns), ['type', 'status', 'key', 'path', 'expiry', 'billing'], 'the tree shows every column');
  t.same(misaligned(wideColumns), [], "the tree's columns line up, root and subordinate alike");

  // Invalid input: the message the API gives for the same request.
  await page.click('button:has-text("Create CA")');
  await fillDn(page, 'bad-country');
  await page.fill('input[name=country]', 'CHINA');
  await page.click('[data-test=create-ca] button[type=submit]');
  const shown = await page.textContent('[data-test=create-ca] [data-test=error]');
  const direct = await fetch(`${server.base}/v1/private-certificate-authorities`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'ROOT',
      distinguished_name: {
        common_name: 'bad-country',
        organization: 'console-test',
        organizational_unit: 'platform',
        country: 'CHINA',
        state: 'zhejiang',
        locality: 'hangzhou',
      },
      key_algorithm: 'EC256',
      signature_algorithm: 'SHA256',
      validity: { type: 'YEAR', value: 10 },
    }),
  });
  const error = (await direct.json()) as { error_code: string; error_msg: string };
  t.equal(direct.status, 400);
  t.equal(shown, `${error.error_code}: ${error.error_msg}`, 'the console shows the contract error_code and error_msg');
  await shot(page, '02-ca-tree');
  // Escape closes the open panel (focus is on its submit button) and gives the focus back to the button that opened it.
  await page.keyboard.press('Escape');
  await page.waitForSelector('[data-test=create-ca]', { state: 'detached', timeout: 5_000 }).catch(() => undefined);
  t.equal(await page.locator('[data-test=create-ca]').count(), 0, 'Escape closes the Create CA panel');
  const focused = await page.evaluate(() => {
    const element = document.activeElement;
    return `${element?.tagName} "${element?.textContent}" expanded=${element?.getAttribute('aria-expanded')}`;
  });
  t.equal(focused, 'BUTTON "Create CA" expanded=false', 'and the focus is back on the Create CA button');

  // CA detail of the subordinate.
  await page.click('a:has-text("console-issuing")');
  await page.waitForSelector('[data-test=ca-detail]');
  t.match(await page.textContent('[data-test=urn]'), /^pca:cn-north-4:[0-9a-f]+:ca:[0-9a-f-]{36}$/, 'the URN is shown');
  t.equal(await titleOf(page, 'console-issuing — Private CA'), 'console-issuing — Private CA', "a CA's page is titled with its name");
  await shot(page, '03-ca-detail');
  t.same(await unnamedControls(page), [], 'every control of the CA page has an accessible name');

  // Issue from a CSR made by openssl.
  const { csr } = await opensslCsr(dir, 'console-leaf.example.com', [...KEY_ARGS.p256], ['-subj', '/CN=console-leaf.example.com']);
  await page.fill('textarea[name=csr]', csr);
  await page.click('[data-test=issue] button[type=submit]');
  await page.waitForSelector('[data-test=certificate]');
  t.equal(await statusOf(page).textContent(), 'ISSUED');
  t.equal(
    await titleOf(page, 'console-leaf.example.com — Private CA'),
    'console-leaf.example.com — Private CA',
    "a certificate's page is titled with its common name",
  );
  // README: the expiry turns orange under 30 days. Counted in days as the validity is, a 30-day certificate has 30
  // days left on the day it is issued, not 29 and a fraction.
  const expiry = page.locator('[data-test=certificate] [data-test=expiry]');
  t.equal(await expiry.getAttribute('title'), '30 days left', 'a 30-day certificate has 30 days left when issued');
  t.notMatch(await expiry.getAttribute('class'), /warn/, 'and is not shown as expiring soon');
  await shot(page, '04-certificate');

  // Download the PEM bundle; openssl verifies it up to the root as the API exports it.
  const dialogsBefore = dialogs.messages.length;
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=download-bundle]')]);
  t.same(dialogs.messages.slice(dialogsBefore), [], 'a CSR certificate (no key held): the bundle asks no confirmation');
  const bundle = readFileSync((await download.path())!, 'utf8');
  const blocks = pemBlocks(bundle);
  t.equal(blocks.length, 3, 'leaf, subordinate and root');
  const issuerHref = await page.getAttribute('a:has-text("Issuing CA")', 'href');
  const issuerCa = (await (
    await fetch(`${server.base}/v1/private-certificate-authorities/${issuerHref!.split('/').pop()}`, {
      headers: { authorization: `Bearer ${token}` },
    })
  ).json()) as { issuer_id: string };
  const rootExport = await fetch(`${server.base}/v1/private-certificate-authorities/${issuerCa.issuer_id}/export`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  const rootPem = ((await rootExport.json()) as { certificate: string }).certificate;
  const verified = await verifyStrict(dir, blocks[0], rootPem, [blocks[1]]);
  t.ok(verified.ok, `openssl verifies the downloaded bundle: ${verified.stdout.trim()} ${verified.stderr.trim()}`);

  // Revoke it and see the status change.
  await page.selectOption('select[name=reason]', 'KEY_COMPROMISE');
  await page.click('button:has-text("Revoke")');
  await page.waitForSelector('h2 .badge:has-text("REVOKED")');
  t.equal(await statusOf(page).textContent(), 'REVOKED', 'the certificate shows REVOKED');

  // A certificate with a server-made key, from the CA page; a zip of each export type downloads.
  await page.click('a:has-text("Issuing CA")');
  await page.check('input[name=mode] >> nth=1');
  await page.fill('input[name=common_name]', 'server-made.example.com');
  await page.fill('input[name=san]', 'server-made.example.com, api.example.com');
  await page.click('[data-test=issue] button[type=submit]');
  await page.waitForSelector('[data-test=certificate]');
  // Its PEM bundle is asked for without the key: no confirmation, no key in the browser, no key export audited.
  const serverMadeId = new URL(page.url()).hash.split('/').pop()!;
  const keyExports = async () => {
    const answer = await fetch(`${server.base}/v1/audit-events?action=pca:cert:export&resource_id=${serverMadeId}&limit=100`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const { audit_events } = (await answer.json()) as { audit_events: { detail: { private_key?: boolean } | null }[] };
    return audit_events.filter((event) => event.detail?.private_key === true).length;
  };
  const bundleDialogs = dialogs.messages.length;
  const [serverMadeBundle] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=download-bundle]')]);
  t.same(dialogs.messages.slice(bundleDialogs), [], 'a server-made key: the bundle asks nothing either');
  const serverMadeText = readFileSync((await serverMadeBundle.path())!, 'utf8');
  t.equal(pemBlocks(serverMadeText).length, 3, 'the bundle holds leaf, subordinate and root');
  t.notMatch(serverMadeText, /PRIVATE KEY/, 'and no private key');
  t.equal(await keyExports(), 0, 'no pca:cert:export with private_key true: the key never left');
  // Only types the API accepts for this entity certificate: ISTIO is refused but for an INTERMEDIATE_CA (§10.9).
  const exportTypes = await page.locator('select[name=export_type] option').allTextContents();
  t.same(exportTypes, ['OTHER', 'NGINX', 'APACHE', 'IIS', 'TOMCAT'], 'no ISTIO export offered for an entity certificate');
  for (const type of exportTypes) {
    await page.selectOption('select[name=export_type]', type);
    const [zip] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download zip")')]);
    const bytes = readFileSync((await zip.path())!);
    t.equal(bytes.subarray(0, 2).toString('latin1'), 'PK', `${type}: a zip archive (${zip.suggestedFilename()})`);
  }
  t.same(await unnamedControls(page), [], 'every control of the certificate page has an accessible name (keystore password shown)');
  // A keystore password typed for TOMCAT, then another type chosen (the field is hidden): the key is not encrypted.
  await page.fill('input[name=export_password]', 'Keystore#2024');
  await page.selectOption('select[name=export_type]', 'NGINX');
  t.equal(await page.locator('input[name=export_password]').count(), 0, 'NGINX: no keystore password field');
  const [nginxZip] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download zip")')]);
  const nginxKey = execFileSync('unzip', ['-p', (await nginxZip.path())!, 'server.key'], { encoding: 'utf8' });
  t.match(nginxKey, /^-----BEGIN (EC|RSA) PRIVATE KEY-----/, 'NGINX after a TOMCAT password: server.key is not encrypted');

  // The certificate list: search, filter, sort, page.
  await page.click('nav a:has-text("Certificates")');
  await page.waitForSelector('[data-test=certificate-row]');
  t.equal(await page.locator('[data-test=certificate-row]').count(), 2);
  await page.fill('input[name=search]', 'console-leaf');
  await page.click('button:has-text("Search")');
  await page.waitForFunction(() => document.querySelectorAll('[data-test=certificate-row]').length === 1);
  await page.selectOption('select[name=status]', 'ISSUED');
  await page.waitForSelector('text=No certificates.');
  await page.selectOption('select[name=status]', 'REVOKED');
  await page.waitForSelector('[data-test=certificate-row]:has-text("console-leaf.example.com")');
  await page.fill('input[name=search]', '');
  await page.click('button:has-text("Search")');
  await page.selectOption('select[name=status]', '');
  await page.selectOption('select[name=sort_key]', 'common_name');
  await page.selectOption('select[name=sort_dir]', 'ASC');
  // Newest first put server-made first; by name, ascending, console-leaf leads.
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('[data-test=certificate-row]');
    return rows.length === 2 && rows[0].textContent!.includes('console-leaf');
  });
  t.match(await page.textContent('[data-test=certificate-row] >> nth=1'), /server-made/, 'sorted by name, ascending');
  t.match(await page.textContent('[data-test=page]'), /1–2 of 2/);
  await shot(page, '05-certificates');
  t.same(await unnamedControls(page), [], 'every control of the certificate list has an accessible name');

  // Filters changed in quick succession: the REVOKED list is held until the later 'any status' list has landed,
  // then let through; the page must keep showing the filters selected last.
  let releaseRevoked!: () => void;
  const revokedHeld = new Promise<void>((resolve) => (releaseRevoked = resolve));
  const revokedList = /\/v1\/private-certificates\?.*status=REVOKED/;
  await page.route(revokedList, async (route) => {
    await revokedHeld;
    await route.continue();
  });
  const anyStatusList = page.waitForResponse(
    (response) => response.url().includes('/v1/private-certificates?') && !response.url().includes('status='),
  );
  await page.selectOption('select[name=status]', 'REVOKED');
  await page.selectOption('select[name=status]', '');
  await (await anyStatusList).finished();
  // A few turns of the page's event loop for an answer's JSON to be read and rendered.
  const settle = () =>
    page.evaluate(
      () =>
        new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => requestAnimationFrame(() => setTimeout(resolve, 50)), 0))),
    );
  await settle();
  const lateAnswer = page.waitForResponse(revokedList);
  releaseRevoked();
  await (await lateAnswer).finished();
  await settle();
  t.equal(await page.locator('[data-test=certificate-row]').count(), 2, 'an earlier request answering last does not replace the list');
  t.equal(await page.inputValue('select[name=status]'), '');
  await page.unroute(revokedList);

  // Lifecycle of the subordinate: disable, enable; a pending CA activated; a scheduled deletion and a restore.
  await page.click('nav a:has-text("CAs")');
  await page.click('a:has-text("console-issuing")');
  // The CA page lists this CA's certificates, asked of the API by issuer_id (not filtered from the domain's newest).
  await page.waitForSelector('[data-test=certificate-row]:has-text("server-made.example.com")');
  t.equal(await page.locator('[data-test=certificate-row]').count(), 2, "the CA page lists the CA's two certificates");
  await page.click('button:has-text("Disable")');
  await page.waitForSelector('h2 .badge:has-text("DISABLED")');
  await page.click('button:has-text("Enable")');
  await page.waitForSelector('h2 .badge:has-text("ACTIVED")');
  await page.click('nav a:has-text("CAs")');
  await page.click('button:has-text("Create CA")');
  await page.selectOption('select[name=type]', 'SUBORDINATE');
  await fillDn(page, 'console-pending');
  await page.click('[data-test=create-ca] button[type=submit]');
  await page.click('a:has-text("console-pending")');
  await page.waitForSelector('h2 .badge:has-text("PENDING")');
  await page.waitForSelector('button:has-text("Download CSR")');
  await page.selectOption('select[name=activate_issuer]', { label: 'console-root' });
  await page.click('button:has-text("Activate (1 year)")');
  await page.waitForSelector('h2 .badge:has-text("ACTIVED")');
  t.equal(await page.locator('button:has-text("Schedule deletion")').count(), 0, 'an active CA offers no deletion');
  await page.click('button:has-text("Disable")');
  await page.waitForSelector('h2 .badge:has-text("DISABLED")');
  await page.click('button:has-text("Schedule deletion")');
  await page.waitForSelector('h2 .badge:has-text("DELETED")');
  await page.click('button:has-text("Restore")');
  await page.waitForSelector('h2 .badge:has-text("DISABLED")');
  t.pass('disable, enable, activation, scheduled deletion and restore went through the console');
  // A pending CA is deleted at once (§4.2.8), not scheduled: the page returns to the hierarchy, where it is gone.
  await page.click('nav a:has-text("CAs")');
  await page.click('button:has-text("Create CA")');
  await page.selectOption('select[name=type]', 'SUBORDINATE');
  await fillDn(page, 'console-discarded');
  await page.click('[data-test=create-ca] button[type=submit]');
  await page.click('a:has-text("console-discarded")');
  await page.waitForSelector('h2 .badge:has-text("PENDING")');
  t.equal(await page.locator('button:has-text("Schedule deletion")').count(), 0, 'a pending CA offers no scheduled deletion');
  await page.click('[data-test=ca-detail] button:has-text("Delete")');
  await page.waitForSelector('.tree');
  t.equal(await page.locator('[data-test=ca-node]:has-text("console-discarded")').count(), 0, 'deleted at once');

  // Billing: the month's summary and its CSV.
  await page.click('nav a:has-text("Billing")');
  await page.waitForSelector('[data-test=billing-summary]');
  t.match(await page.textContent('[data-test=billing-summary]'), /CERT_ISSUE\s*2/, 'two certificate issues in the summary');
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('button:has-text("Download CSV")')]);
  const csvText = readFileSync((await csv.path())!, 'utf8');
  t.match(csvText, /^record_id,domain_id,resource_type,/, "CSV header: the API's own CSV");
  t.equal(csvText.split('\n').filter((line) => line.includes('CERT_ISSUE')).length, 2, 'one CSV line per certificate issue');
  await shot(page, '06-billing');
  t.same(await unnamedControls(page), [], 'every control of the billing page has an accessible name');

  // Access keys: create (the secret shown once), sign in with the pair, delete.
  await page.click('nav a:has-text("Access keys")');
  await page.fill('input[name=description]', 'console test');
  await page.click('button:has-text("Create access key")');
  await page.waitForSelector('[data-test=new-secret]');
  const [access, secret] = await page.locator('[data-test=new-secret] code').allTextContents();
  await shot(page, '07-access-keys');
  await page.click('button:has-text("Done")');
  t.equal(await page.locator('[data-test=new-secret]').count(), 0, 'the secret is gone once dismissed');
  t.notMatch(await page.content(), secret, 'and not shown in the list');
  await page.click('button:has-text("Sign out")');
  t.equal(await page.locator('[data-test=session-ended]').count(), 0, 'signing out is not a session that ended');
  await page.fill('input[name=access]', access);
  await page.fill('input[name=secret]', secret);
  await page.click('[data-test=signin-key] button');
  // Back on the page where the session ended, now under the exchanged token.
  await page.waitForSelector(`[data-test=access-keys] tr:has-text("${access}")`);
  t.pass('signed in with the access key pair (exchanged for a token)');
  await page.click(`tr:has-text("${access}") button:has-text("Delete")`);
  await page.waitForFunction((key) => !document.body.textContent!.includes(key), access);

  // Audit events.
  await page.click('nav a:has-text("Audit")');
  await page.waitForSelector('[data-test=audit-events]');
  // The certificates' events: the newest page of all of them is mostly the later CA and access-key steps and exports.
  await page.selectOption('select[name=resource_type]', 'CERTIFICATE');
  await page
    .waitForFunction(() => document.querySelector('[data-test=audit-events]')?.textContent?.includes('pca:cert:revoke'), undefined, {
      timeout: 5_000,
    })
    .catch(() => undefined);
  t.match(await page.textContent('[data-test=audit-events]'), /pca:cert:revoke/);
  await page.selectOption('select[name=outcome]', 'FAILURE');
  await page.waitForFunction(() => !document.querySelector('[data-test=audit-events]')?.textContent?.includes('pca:cert:revoke'));
  await shot(page, '08-audit');

  // Each page of the navigation has its own title.
  for (const [link, title] of [
    ['CAs', 'CAs — Private CA'],
    ['Certificates', 'Certificates — Private CA'],
    ['Billing', 'Billing — Private CA'],
    ['Access keys', 'Access keys — Private CA'],
    ['Audit', 'Audit events — Private CA'],
  ]) {
    await page.click(`nav a:has-text("${link}")`);
    t.equal(await titleOf(page, title), title, `the ${link} page's title`);
  }

  // Narrower screens: no page scrolls sideways (minor columns are dropped, long words wrap), and the tree's columns
  // still line up. 900 px: a tablet or a half-screen window; 420 px: a phone.
  let viewport = 900;
  await page.setViewportSize({ width: viewport, height: 900 });
  const narrow = async (name: string, open: () => Promise<unknown>, shown: string) => {
    await open();
    await page.waitForSelector(shown);
    const { scroll, client } = await widths(page);
    t.ok(scroll <= client, `${viewport} px, ${name}: scrollWidth ${scroll} <= clientWidth ${client}`);
  };
  await narrow('CA list', () => page.click('nav a:has-text("CAs")'), '[data-test=ca-tree]');
  const mediumColumns = await treeColumns(page);
  t.same(Object.keys(mediumColumns), ['status', 'key', 'expiry'], 'at 900 px the tree shows status, key and expiry beside the name');
  t.same(misaligned(mediumColumns), [], 'and its columns line up at 900 px');
  viewport = 420;
  await page.setViewportSize({ width: viewport, height: 900 });
  await narrow('CA list', () => page.click('nav a:has-text("CAs")'), '[data-test=ca-tree]');
  await shot(page, '10-narrow-ca-tree');
  const narrowColumns = await treeColumns(page);
  t.same(Object.keys(narrowColumns), ['status', 'expiry'], 'the narrow tree shows status and expiry beside the name');
  t.same(misaligned(narrowColumns), [], "and the narrow tree's columns line up");
  await narrow('CA page', () => page.click('a:has-text("console-issuing")'), '[data-test=ca-detail] [data-test=certificate-row]');
  await shot(page, '11-narrow-ca-detail');
  await narrow('certificate page', () => page.click('[data-test=certificate-row] a >> nth=0'), '[data-test=certificate]');
  await narrow('certificate list', () => page.click('nav a:has-text("Certificates")'), '[data-test=certificate-row]');
  await shot(page, '12-narrow-certificates');
  await narrow('billing', () => page.click('nav a:has-text("Billing")'), '[data-test=billing-records]');
  await narrow('access keys', () => page.click('nav a:has-text("Access keys")'), '[data-test=access-keys]');
  await narrow('audit', () => page.click('nav a:has-text("Audit")'), '[data-test=audit-events] tr >> nth=1');
  await page.setViewportSize({ width: 1280, height: 900 });

  // A token the server refuses (expired, say): the next call's 401 returns to the sign-in page, which says why.
  await page.evaluate(() => {
    for (const key of Object.keys(sessionStorage)) sessionStorage.setItem(key, 'expired-or-refused');
  });
  await page.click('nav a:has-text("Billing")');
  await page.waitForSelector('[data-test=session-ended]');
  t.match(await page.textContent('[data-test=session-ended]'), /session ended/, 'a session ended by a 401 is explained');

  t.same(scriptErrors, [], 'no script error or CSP violation');
  checkRequests(t, requests, server.base);
  await page.close();
});

t.test('the console against a production server with real keys', async (t) => {
  const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const env = {
    NODE_ENV: 'production',
    MASTER_KEY: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY: jwt.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: jwt.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    DEFAULT_DOMAIN_ID: 'production-domain',
    // Certificates carry it; a production server refuses its own loopback address there. The browser uses server.base.
    PUBLIC_BASE_URL: 'https://pca.console.internal',
  };
  const server = await startServer(env);
  t.teardown(() => server.child.kill('SIGKILL'));
  t.notMatch(server.output(), /PCA_TOKEN/, 'no token is printed in production');
  // A token signed with the deployment's JWT key, as an identity provider would issue it.
  const signer = Fastify();
  await signer.register(fastifyJwt, jwtPluginOptions(loadConfig({ ...env, DATA_DIR: os.tmpdir() })));
  await signer.ready();
  const token = mintAdminToken(signer.jwt, 'production-domain', 600);
  await signer.close();

  const { page, requests, scriptErrors } = await openPage();
  const response = await page.goto(`${server.base}/console/`);
  t.match(response!.headers()['content-security-policy'], /script-src 'self'/, 'served with the strict CSP');
  await signIn(page, token);
  await page.click('button:has-text("Create CA")');
  await fillDn(page, 'production-root');
  await page.click('[data-test=create-ca] button[type=submit]');
  await page.click('a:has-text("production-root")');
  await page.check('input[name=mode] >> nth=1');
  await page.fill('input[name=common_name]', 'prod.example.com');
  await page.click('[data-test=issue] button[type=submit]');
  await page.waitForSelector('[data-test=certificate]');
  t.equal(await statusOf(page).textContent(), 'ISSUED', 'a certificate issued through the console');
  // One day shorter: under 30 days, in the warning colour from the start.
  await page.click('a:has-text("Issuing CA")');
  await page.check('input[name=mode] >> nth=1');
  await page.fill('input[name=common_name]', 'short.example.com');
  await page.fill('input[name=cert_validity_value]', '29');
  await page.click('[data-test=issue] button[type=submit]');
  await page.waitForSelector('[data-test=certificate] h2:has-text("short.example.com")');
  const shortExpiry = page.locator('[data-test=certificate] [data-test=expiry]');
  t.equal(await shortExpiry.getAttribute('title'), '29 days left');
  t.match(await shortExpiry.getAttribute('class'), /warn/, 'a 29-day certificate is shown as expiring soon');

  // Yearly/monthly CAs past their paid period: the database's prepaid_until moved back (the server derives the state).
  const [paid, grace, frozen] = await orderCas(server.base, token, 3, 0);
  const [renewing] = await orderCas(server.base, token, 1, 1);
  const db = new pg.Client({ connectionString: server.env.DATABASE_URL });
  await db.connect();
  await db.query(`UPDATE certificate_authorities SET prepaid_until = now() - interval '1 day' WHERE id = $1`, [grace]);
  await db.query(`UPDATE certificate_authorities SET prepaid_until = now() - interval '16 days' WHERE id = $1`, [frozen]);
  await db.end();
  await page.click('nav a:has-text("CAs")');
  const prepaidOf = (id: string) => page.locator(`[data-test=ca-node]:has(a[href="#/cas/${id}"]) [data-test=prepaid]`).textContent();
  t.match(await prepaidOf(paid!), /^paid until (?!.*renews automatically)/, 'in its paid period: the end date');
  t.match(await prepaidOf(renewing!), /^paid until .* · renews automatically$/, 'ordered with auto-renew: says so');
  t.equal(await prepaidOf(grace!), 'GRACE PERIOD', 'a day after: the grace period');
  t.equal(await prepaidOf(frozen!), 'FROZEN', 'after the 15-day grace period: frozen (freeze_flag 1)');
  await shot(page, '09-prepaid-states');
  t.same(scriptErrors, [], 'no script error or CSP violation');
  checkRequests(t, requests, server.base);
  await page.close();
});

t.test('the console offers what the API allows in each state (§6.1, §6.2, frozen prepaid CAs)', async (t) => {
  const { server, token } = await startDevServer(t);
  const api = <T = any>(method: string, pathname: string, body?: unknown) => callApi<T>(server.base, token, method, pathname, body);
  const CAS = '/v1/private-certificate-authorities';
  const caSettings = (commonName: string) => ({
    distinguished_name: {
      common_name: commonName,
      organization: 'console-test',
      organizational_unit: 'platform',
      country: 'CN',
      state: 'zhejiang',
      locality: 'hangzhou',
    },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 5 },
  });
  const createCa = async (commonName: string, placement: { issuer_id?: string } = {}) =>
    (
      await api<{ ca_id: string }>('POST', CAS, {
        type: placement.issuer_id === undefined ? 'ROOT' : 'SUBORDINATE',
        ...caSettings(commonName),
        // A subordinate ends before its root whichever second each is made in (the root's 5 years start earlier).
        ...(placement.issuer_id === undefined ? {} : { validity: { type: 'YEAR', value: 1 } }),
        ...placement,
      })
    ).ca_id;
  const root = await createCa('states-root');
  const [unconfigured, frozen] = await orderCas(server.base, token, 2, 0);
  await api('POST', `${CAS}/${frozen}/activate`, { type: 'ROOT', ...caSettings('states-frozen') });
  const expired = await createCa('states-expired', { issuer_id: root });
  const deleted = await createCa('states-deleted', { issuer_id: root });
  await api('POST', `${CAS}/${deleted}/tags/create`, { tags: [{ key: 'team', value: 'pki' }] });
  await api('POST', `${CAS}/${deleted}/disable`);
  await api('DELETE', `${CAS}/${deleted}?pending_days=7`);
  // A subordinate created without its issuer: PENDING, with a key.
  const pending = (
    await api<{ ca_id: string }>('POST', CAS, {
      type: 'SUBORDINATE',
      distinguished_name: caSettings('states-pending').distinguished_name,
      key_algorithm: 'EC256',
    })
  ).ca_id;
  const { certificate_id: revoked } = await api<{ certificate_id: string }>('POST', '/v1/private-certificates', {
    issuer_id: root,
    distinguished_name: { common_name: 'states-revoked.example.com' },
    key_algorithm: 'EC256',
    validity: { type: 'DAY', value: 30 },
  });
  await api('POST', `/v1/private-certificates/${revoked}/revoke`, {});
  // Past the paid period and its 15-day grace: frozen (contract-notes.md). Past not_after: EXPIRED (derived when read).
  const db = new pg.Client({ connectionString: server.env.DATABASE_URL });
  await db.connect();
  await db.query(`UPDATE certificate_authorities SET prepaid_until = now() - interval '16 days' WHERE id = $1`, [frozen]);
  await db.query(`UPDATE certificate_authorities SET not_after = now() - interval '1 day' WHERE id = $1`, [expired]);
  await db.end();

  const { page, requests, scriptErrors } = await openPage();
  // A control the console does not offer fails the test here, not after the tour's minute.
  page.setDefaultTimeout(15_000);
  await page.goto(`${server.base}/console`);
  await signIn(page, token);
  await page.waitForSelector('[data-test=ca-tree]');
  const open = async (hash: string, status: string) => {
    await page.goto(`${server.base}/console#${hash}`);
    await page.waitForSelector(`h2 .badge:has-text("${status}")`);
  };
  const offered = (selector: string) => page.locator(selector).count();
  const optionsOf = (select: string) => page.locator(`${select} option`).allTextContents();
  // What the page shows now, without waiting for it: each state's checks are made, offered or not.
  const shownText = async (selector: string) => (await page.locator(selector).allTextContents()).join(' ');

  await open(`/certificates/${revoked}`, 'REVOKED');
  t.equal(await offered('[data-test=download-bundle]'), 0, 'a revoked certificate offers no PEM bundle (§4.4.5: ISSUED only)');
  t.equal(await offered('button:has-text("Download zip")'), 0, 'nor a zip');

  await open(`/cas/${frozen}`, 'ACTIVED');
  t.equal(await offered('[data-test=issue]'), 0, 'a frozen CA offers no Issue form');
  t.match(await shownText('[data-test=frozen]'), /^Frozen: renew to issue\./, 'and says why where the form would be');
  await page.click('nav a:has-text("CAs")');
  await page.click('button:has-text("Create CA")');
  await page.selectOption('select[name=type]', 'SUBORDINATE');
  t.same(await optionsOf('select[name=issuer_id]'), ['external parent (stays PENDING)', 'states-root'], 'creating a CA: no frozen issuer');

  await open(`/cas/${pending}`, 'PENDING');
  await page.waitForSelector('select[name=activate_issuer] option:has-text("states-root")', { state: 'attached' });
  t.same(await optionsOf('select[name=activate_issuer]'), ['choose an issuer', 'states-root'], 'activating a CA: no frozen issuer');
  t.equal(await offered('input[name=crl]'), 1, 'a PENDING CA offers its CRL and OCSP settings (§6.1)');

  await open(`/cas/${expired}`, 'EXPIRED');
  t.equal(await offered('button:has-text("Revoke CA")'), 1, 'an EXPIRED subordinate can be revoked (§4.2.7)');

  await open(`/cas/${deleted}`, 'DELETED');
  await page.waitForSelector('.badge:has-text("team=pki")');
  t.equal(await offered('button:has-text("Add tag")'), 0, 'a DELETED CA lists its tags but offers no tag write (§6.1)');

  await open(`/cas/${unconfigured}`, 'PENDING');
  t.equal(await offered('[data-test=set-up-ca]'), 1, 'an unconfigured yearly/monthly CA is offered its set-up');
  t.equal(await offered('textarea[name=import_certificate]'), 0, 'not an import: it has no key, so no CSR');
  t.equal(await offered('button:has-text("Activate (1 year)")'), 0, 'nor an activation that names no type, name or key');
  t.equal(await offered('input[name=crl]'), 1, 'its CRL and OCSP settings are offered: the API takes them while it waits');

  // What is offered works. The CRL of the waiting CAs, then the set-up.
  for (const id of [pending, unconfigured]) {
    await open(`/cas/${id}`, 'PENDING');
    const [enabled] = await Promise.all([page.waitForResponse(`${server.base}${CAS}/${id}/crl/enable`), page.click('input[name=crl]')]);
    t.equal(enabled.status(), 204, 'the CRL of a waiting CA is enabled through the console');
    const { crl_configuration } = await api<{ crl_configuration: { enabled: boolean } }>('GET', `${CAS}/${id}`);
    t.equal(crl_configuration.enabled, true, 'as the API then shows');
  }
  t.same(await optionsOf('[data-test=set-up-ca] select[name=issuer_id]'), [], 'set up as a root by default: no issuer asked');
  await page.selectOption('[data-test=set-up-ca] select[name=type]', 'SUBORDINATE');
  await page.waitForSelector('[data-test=set-up-ca] select[name=issuer_id] option:has-text("states-root")', { state: 'attached' });
  t.same(
    await optionsOf('[data-test=set-up-ca] select[name=issuer_id]'),
    ['choose an issuer', 'states-root'],
    'setting up: no frozen issuer',
  );
  await page.selectOption('[data-test=set-up-ca] select[name=issuer_id]', { label: 'states-root' });
  await fillDn(page, 'states-configured');
  await page.selectOption('[data-test=set-up-ca] select[name=key_algorithm]', 'EC384');
  await page.fill('[data-test=set-up-ca] input[name=validity_value]', '2');
  await page.click('[data-test=set-up-ca] button[type=submit]');
  await page.waitForSelector('h2 .badge:has-text("ACTIVED")');
  const configured = await api('GET', `${CAS}/${unconfigured}`);
  t.match(
    configured,
    {
      type: 'SUBORDINATE',
      issuer_id: root,
      key_algorithm: 'EC384',
      charging_mode: 0,
      distinguished_name: { common_name: 'states-configured' },
    },
    'the set-up configured the yearly/monthly CA (§4.2.4)',
  );
  t.match(await page.textContent('h2'), /^states-configured/, 'the page shows it as the API returns it');
  t.match(await page.textContent('.facts'), /TypeSUBORDINATE.*Issuerstates-root.*Key algorithmEC384/s);
  t.equal(await offered('[data-test=set-up-ca]'), 0, 'and offers no set-up any more');
  t.equal(await offered('[data-test=issue]'), 1, 'but the Issue form');
  t.same(
    requests.filter(({ url }) => url.pathname === `${CAS}/${unconfigured}/csr`).map(({ url }) => url.pathname),
    [],
    'no CSR asked of a CA that has none',
  );
  t.same(scriptErrors, [], 'no script error or CSP violation');
  checkRequests(t, requests, server.base);
  await page.close();
});
