/**
 * A real app over a fresh test database and real key stores, for tests that go through HTTP
 * (`app.inject`, or `listen()` for a started server).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp, type BuildAppOptions } from '../../src/app.ts';
import { mintAdminToken } from '../../src/auth/dev-token.ts';
import type { TokenClaims } from '../../src/auth/jwt.ts';
import type { Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createKeyStores, type KeyStores } from '../../src/keystore/index.ts';
import { testDatabase, type TestDatabase, type TestPostgres } from './database.ts';

export const TEST_DOMAIN = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
export const OTHER_DOMAIN = 'ffeeddccbbaa99887766554433221100';

const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function passThrough(names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

/** Overrides the PKCS#11 settings CI's SoftHSM2 pass gives every test: this app uses software keys only. */
export const SOFTWARE_KEYS_ONLY = { KEY_STORE: 'software', PKCS11_LIBRARY: '', PKCS11_PIN: '', PKCS11_TOKEN_LABEL: '', PKCS11_SLOT: '' };

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({
    DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pca-test-')),
    MASTER_KEY: randomBytes(32).toString('base64'),
    JWT_PRIVATE_KEY: jwtKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: jwtKeys.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    DEFAULT_DOMAIN_ID: TEST_DOMAIN,
    REGION: 'cn-north-4',
    PUBLIC_BASE_URL: 'http://127.0.0.1:8080',
    LOG_LEVEL: 'info',
    RUN_JOBS: 'false',
    // Suites send thousands of refused credentials from one address; test/http/auth-failures.test.ts sets its own.
    AUTH_FAILURE_MAX: '100000000',
    // CI runs the suite a second time with KEY_STORE=pkcs11 and a SoftHSM2 token (see .ci/run).
    ...passThrough(['KEY_STORE', 'PKCS11_LIBRARY', 'PKCS11_SLOT', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN']),
    ...env,
  });
}

/** Log lines the app wrote, parsed, plus the raw text (for searching secrets). */
export class LogCapture {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk, _encoding, done) => {
      this.lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  get text(): string {
    return this.lines.join('\n');
  }
  records(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  database: TestDatabase;
  logs: LogCapture;
  /** An admin bearer token (every action) for a domain. */
  token(domainId?: string): string;
  /** A token with only the given actions. */
  tokenWith(actions: string[], domainId?: string): string;
  auth(domainId?: string): { authorization: string };
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  clock?: Clock;
  pkcs11?: Config['keyStore']['pkcs11'];
  /** The OpenAPI document served (buildApp's option). */
  openApi?: BuildAppOptions['openApi'];
  /** Extra routes for probing framework behaviour, registered before the app is ready. */
  extraRoutes?: (app: FastifyInstance) => void;
  /** Stands in for the app's key stores (to count or fail their calls); closing still closes the real ones. */
  wrapKeyStores?: (keyStores: KeyStores) => KeyStores;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const config = testConfig(options.env);
  if (options.pkcs11) config.keyStore.pkcs11 = options.pkcs11;
  const database = await testDatabase();
  const keyStores = await createKeyStores({
    masterKey: config.masterKey,
    otherMasterKeys: config.otherMasterKeys,
    pkcs11: config.keyStore.pkcs11,
  });
  const logs = new LogCapture();
  const app = await buildApp({
    config,
    database,
    keyStores: options.wrapKeyStores ? options.wrapKeyStores(keyStores) : keyStores,
    clock: options.clock,
    logDestination: logs.stream,
    openApi: options.openApi,
  });
  options.extraRoutes?.(app);
  await app.ready();
  const token = (domainId = config.defaultDomainId) => mintAdminToken(app.jwt, domainId, 3600);
  const tokenWith = (actions: string[], domainId = config.defaultDomainId) =>
    app.jwt.sign({ sub: 'test', domain_id: domainId, actions } satisfies TokenClaims);
  return {
    app,
    config,
    database,
    logs,
    token,
    tokenWith,
    auth: (domainId) => ({ authorization: `Bearer ${token(domainId)}` }),
    async close() {
      await app.close();
      await Promise.allSettled([keyStores.software.close(), keyStores.pkcs11?.close()]);
      await database.close();
    },
  };
}

/**
 * A test app whose database lives on a real Postgres server (from realPostgresOrSkipFile / realPostgresOrSkipTest:
 * DATABASE_URL's, else a throwaway cluster), for tests that need one whatever the suite runs on: another process
 * sharing the database, pg_dump. Closing it stops that server.
 */
export async function createTestAppOnRealPostgres(postgres: TestPostgres, options: TestAppOptions = {}): Promise<TestApp> {
  // Set while the app lives (processes it starts inherit it), then as it was: a later test must not find the URL of
  // a server stopped here.
  const before = process.env.DATABASE_URL;
  process.env.DATABASE_URL = postgres.url;
  const harness = await createTestApp(options);
  return {
    ...harness,
    async close() {
      await harness.close();
      await postgres.stop();
      if (before === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = before;
    },
  };
}
