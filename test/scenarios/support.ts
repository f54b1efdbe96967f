/**
 * What the scenario tests share: a started server whose PUBLIC_BASE_URL is its own address (so the URLs it writes
 * into certificates are the ones a relying party can fetch), JSON calls to it, the usual root and subordinate,
 * and curl.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { CA, DN } from '../ca/support.ts';
import { scratch } from '../certificates/support.ts';
import { createTestApp, type TestApp, type TestAppOptions } from '../helpers/app.ts';
import { freePort } from '../helpers/database.ts';

export { CA };
export const CERT = '/v1/private-certificates';

type Json = Record<string, any>;

export interface StartedServer {
  harness: TestApp;
  /** http://127.0.0.1:<port>, also the server's PUBLIC_BASE_URL. */
  base: string;
  dir: Awaited<ReturnType<typeof scratch>>;
  /** A call with the admin token; `url` is a path under `base`. The status and the parsed body, whatever they are. */
  call(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Json }>;
  /** The same, thrown unless the status is `status` (200 unless given); the parsed body. */
  ok(method: string, url: string, body?: unknown, options?: { status?: number; headers?: Record<string, string> }): Promise<Json>;
}

/**
 * A test app listening on a free port, with PUBLIC_BASE_URL set to that address (extra env and a clock as given),
 * and a scratch folder named `name`; both are removed at the file's teardown.
 */
export async function startServer(name: string, options: TestAppOptions = {}): Promise<StartedServer> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const harness = await createTestApp({ ...options, env: { ...options.env, PUBLIC_BASE_URL: base } });
  const dir = await scratch(name);
  t.teardown(async () => {
    await harness.close();
    await rm(path.dirname(dir.file('x')), { recursive: true, force: true });
  });
  await harness.app.listen({ host: '127.0.0.1', port });
  const headers = { ...harness.auth(), 'content-type': 'application/json' };

  async function call(method: string, url: string, body?: unknown, extra: Record<string, string> = {}) {
    const response = await fetch(`${base}${url}`, {
      method,
      headers: { ...headers, ...extra },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : {} };
  }
  async function ok(method: string, url: string, body?: unknown, options: { status?: number; headers?: Record<string, string> } = {}) {
    const response = await call(method, url, body, options.headers);
    if (response.status !== (options.status ?? 200)) {
      throw new Error(`${method} ${url} -> ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response.body;
  }
  return { harness, base, dir, call, ok };
}

/** A root CA (RSA 2048, one year) named `commonName` (the CA tests' DN otherwise); its id. */
export async function createRoot(server: Pick<StartedServer, 'ok'>, commonName: string): Promise<string> {
  const { ca_id } = await server.ok('POST', CA, {
    type: 'ROOT',
    distinguished_name: { ...DN, common_name: commonName },
    key_algorithm: 'RSA2048',
    signature_algorithm: 'SHA256',
    validity: { type: 'YEAR', value: 1 },
  });
  return ca_id as string;
}

/** A subordinate (EC P-256, path length 1, `months` months) of `rootId` named `commonName` (the CA tests' DN otherwise); its id. */
export async function createSubordinate(
  server: Pick<StartedServer, 'ok'>,
  rootId: string,
  commonName: string,
  months = 11,
): Promise<string> {
  const { ca_id } = await server.ok('POST', CA, {
    type: 'SUBORDINATE',
    issuer_id: rootId,
    distinguished_name: { ...DN, common_name: commonName },
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    validity: { type: 'MONTH', value: months },
    path_length: 1,
  });
  return ca_id as string;
}

/** Root `name` and its subordinate `name-subordinate-ca`, as scenarios 1-3 create them. */
export async function createHierarchy(server: Pick<StartedServer, 'ok'>, name: string): Promise<{ rootId: string; subId: string }> {
  const rootId = await createRoot(server, name);
  return { rootId, subId: await createSubordinate(server, rootId, `${name}-subordinate-ca`) };
}

/** Runs curl -sS with a 10 s limit; its exit code (0: success), stdout and stderr. */
export async function curl(args: string[]): Promise<{ code: number; output: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('curl', ['-sS', '--max-time', '10', ...args]);
    return { code: 0, output: stdout, stderr };
  } catch (error) {
    const failure = error as { code?: unknown; stdout?: string; stderr?: string };
    return {
      code: typeof failure.code === 'number' ? failure.code : -1,
      output: failure.stdout ?? '',
      stderr: failure.stderr ?? String(error),
    };
  }
}

/** curl --fail: `url` into `file`; the content type of the answer (thrown unless curl succeeds). */
export async function curlToFile(url: string, file: string, extra: string[] = []): Promise<string> {
  const result = await curl(['--fail', ...extra, '-o', file, '-w', '%{content_type}', url]);
  if (result.code !== 0) throw new Error(`curl ${url}: exit ${result.code}: ${result.stderr}`);
  return result.output;
}
