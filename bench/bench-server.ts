/**
 * What the HTTP benchmarks stand on: the app listening on a loopback port over a fresh database on a real Postgres
 * (DATABASE_URL's, else a throwaway cluster), an admin token, and a P-256 root and subordinate made through the API.
 *
 * BENCH_WORKERS=n serves instead from a server started as its own process (src/server.ts) with WORKERS=n on the same
 * database and configuration; `serverCpuMs` then counts that primary and its workers.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildApp } from '../src/app.ts';
import { mintAdminToken } from '../src/auth/dev-token.ts';
import { createKeyStores } from '../src/keystore/index.ts';
import { testConfig } from '../test/helpers/app.ts';
import { postgresTestDatabase, realPostgres } from '../test/helpers/database.ts';
import { startSharedServer } from '../test/helpers/server-process.ts';
import { processTreeCpuMs } from './load.ts';

/** `defaultRateLimit`: keep the configured default per-credential limit instead of lifting it. */
export async function startBenchServer(env: Record<string, string> = {}, { defaultRateLimit = false } = {}) {
  // Volume, not abuse: unless asked for, the per-credential rate limit is lifted (it would answer most requests), and
  // with it the domain's certificate quota (100,000 by default: 20 s at 128 in flight, warm-ups included, reach it).
  const lifted: Record<string, string> = defaultRateLimit ? {} : { RATE_LIMIT_MAX: '100000000', CERTIFICATE_QUOTA: '100000000' };
  const config = testConfig({ ...lifted, ...env });
  const postgres = await realPostgres();
  const database = await postgresTestDatabase(postgres.url);
  const keyStores = createKeyStores({ masterKey: config.masterKey });
  const app = await buildApp({ config, database, keyStores, logDestination: false });
  const workers = Number(process.env.BENCH_WORKERS || 0);
  const serverProcess =
    workers > 0
      ? await startSharedServer({ config, database }, mkdtempSync(path.join(os.tmpdir(), 'pca-bench-')), {
          ...env,
          ...lifted,
          WORKERS: String(workers),
        })
      : undefined;
  const base = serverProcess?.base ?? (await app.listen({ host: '127.0.0.1', port: 0 }));
  const headers = { authorization: `Bearer ${mintAdminToken(app.jwt, config.defaultDomainId, 3600)}`, 'content-type': 'application/json' };

  /** A JSON call that must succeed; its JSON answer (empty for none). */
  async function call(method: string, path: string, body?: unknown): Promise<Record<string, string>> {
    const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, string>) : {};
  }

  /** A P-256 root and a subordinate it issued, named after `prefix` (`subordinate`: extra fields of its request). */
  async function p256Hierarchy(prefix: string, subordinate: Record<string, unknown> = {}): Promise<{ rootId: string; subId: string }> {
    const ca = (cn: string, body: Record<string, unknown>) =>
      call('POST', '/v1/private-certificate-authorities', {
        distinguished_name: {
          common_name: cn,
          country: 'CN',
          state: 'zj',
          locality: 'hz',
          organization: 'bench',
          organizational_unit: 'ou',
        },
        key_algorithm: 'EC256',
        signature_algorithm: 'SHA256',
        ...body,
      });
    const { ca_id: rootId } = await ca(`${prefix}-root`, { type: 'ROOT', validity: { type: 'YEAR', value: 2 } });
    const { ca_id: subId } = await ca(`${prefix}-sub`, {
      type: 'SUBORDINATE',
      issuer_id: rootId,
      validity: { type: 'YEAR', value: 1 },
      ...subordinate,
    });
    return { rootId, subId };
  }

  return {
    base,
    headers,
    database,
    call,
    p256Hierarchy,
    /** CPU milliseconds the server process and its workers used so far; undefined: this process (drive's default). */
    serverCpuMs: serverProcess ? () => processTreeCpuMs(serverProcess.child.pid!) : undefined,
    async close() {
      await serverProcess?.stop();
      await app.close();
      await keyStores.software.close();
      await database.close();
      await postgres.stop();
    },
  };
}
