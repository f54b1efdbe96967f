/**
 * Configuration: read from the environment and validated here, once. Everything else receives a Config.
 * A development deployment (no MASTER_KEY / JWT keys given) keeps generated secrets in DATA_DIR.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import path from 'node:path';
import { existingDevSecrets, loadOrCreateDevSecrets, type DevSecrets } from './config/dev-secrets.ts';
import { isDomainId } from './config/domain-id.ts';
import { boolean, ConfigError, integer, oneOf, type Env } from './config/env.ts';
import { loadPriceCatalog, type PriceCatalog } from './config/price-catalog.ts';

export { ConfigError } from './config/env.ts';
export { checkNodeVersion, isSupportedNode, SUPPORTED_NODE, SUPPORTED_NODE_RANGE } from './config/node-version.ts';

/** Where CA keys live: sealed software keys or a PKCS#11 token (src/keystore implements both). */
export const KEY_STORE_KINDS = ['software', 'pkcs11'] as const;
export type KeyStoreKind = (typeof KEY_STORE_KINDS)[number];

export interface Config {
  host: string;
  port: number;
  region: string;
  publicBaseUrl: string;
  logLevel: string;
  /** `pretty`: human-readable lines (pino-pretty) for development; `json`: one JSON object per line. */
  logFormat: LogFormat;
  /** Bearer token that GET /metrics requires; without one the endpoint answers 404. */
  metricsToken?: string;
  dataDir: string;
  /** Postgres connection string; without it the embedded PGlite in dataDir is used. */
  databaseUrl?: string;
  databasePoolSize: number;
  /** How long a Postgres query waits for its answer before the request gets a 503 (src/db/database.ts). */
  databaseQueryWaitMs: number;
  autoMigrate: boolean;
  runJobs: boolean;
  /** Server processes sharing the port (node:cluster); more than one needs Postgres (DATABASE_URL). */
  workers: number;
  masterKey: Uint8Array;
  /** Master keys that open what was sealed under them; only `masterKey` seals (OTHER_MASTER_KEYS). */
  otherMasterKeys: Uint8Array[];
  keyStore: { defaultKind: KeyStoreKind; pkcs11?: { library: string; slot?: number; tokenLabel?: string; pin: string } };
  jwt: { privateKeyPem: string; publicKeyPem: string; issuer: string; audience: string; ttlSeconds: number };
  /** The domain of a development deployment: dev tokens name it by default. */
  defaultDomainId: string;
  quotas: { ca: number; certificate: number; freeCertificatesPerCa: number; accessKey: number };
  /** Prices and currency of billing records (BILLING_* variables, see config/price-catalog.ts). */
  billing: PriceCatalog;
  bodyLimitBytes: number;
  /** A request's head and body must arrive within this (ms); the head alone within 60 s at most. */
  requestTimeoutMs: number;
  /** Server mode: how long a SIGTERM waits for running requests before the process exits anyway. */
  shutdownGraceMs: number;
  /**
   * `max` per credential (access key or token subject); `domainMax` per domain, across its credentials; `publicMax` per
   * client address on the unauthenticated routes; one window for all.
   */
  rateLimit: { max: number; domainMax: number; publicMax: number; windowMs: number; authFailureMax: number };
  /** Audit events older than this many days are deleted by the `audit-retention` job; undefined keeps them for good. */
  auditRetentionDays?: number;
  /** ACME challenge validation (issue #16): ports, resolver and fixed host addresses, as in Pebble. */
  acme: { http01Port: number; tlsAlpn01Port: number; dnsServer?: string; staticHosts: Record<string, string> };
  /** PEM certificate (chain) and key: the server then speaks HTTPS itself. */
  tls?: { cert: string; key: string };
  /**
   * Proxies whose X-Forwarded-For/-Host/-Proto are believed (addresses, CIDR ranges or proxy-addr's names); empty:
   * none, every client is who its socket says.
   */
  trustProxy: string[];
  /** Where each newly signed CRL and the CA certificate are published besides the API (issue #18); off when absent. */
  crlPublication?: CrlPublicationConfig;
  /** True when secrets were generated for development (printed warning at start). */
  development: boolean;
}

/**
 * CRL publication: an S3 bucket (any S3-compatible endpoint) or, for the server, a folder per bucket name. A CA
 * publishes to the bucket its CRL configuration names (`obs_bucket_name`) when it is one of `buckets`, else to the
 * first; `publicBaseUrl` is where relying parties fetch the objects, `{bucket}` standing for the bucket's name.
 */
export interface CrlPublicationConfig {
  buckets: string[];
  publicBaseUrl: string;
  target: { kind: 'directory'; directory: string } | { kind: 's3'; endpoint?: string; region?: string; forcePathStyle: boolean };
}

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Scrapers hold it in their configuration, so a short one would be guessable for nothing. */
const MIN_METRICS_TOKEN_LENGTH = 16;

function rateLimit(env: Env): Config['rateLimit'] {
  const max = integer(env, 'RATE_LIMIT_MAX', 6000, 1, 100_000_000);
  return {
    max,
    domainMax: integer(env, 'DOMAIN_RATE_LIMIT_MAX', 10 * max, 1, 1_000_000_000),
    publicMax: integer(env, 'PUBLIC_RATE_LIMIT_MAX', max, 1, 100_000_000),
    windowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 86_400_000),
    authFailureMax: integer(env, 'AUTH_FAILURE_MAX', 100, 1, 100_000_000),
  };
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: what only this machine reaches. */
function isLoopback(host: string): boolean {
  const address = host.toLowerCase().replace(/^::ffff:/, '');
  return address === 'localhost' || address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));
}

const PROXY_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

function trustProxy(env: Env): string[] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw) return [];
  return raw.split(',').map((entry) => {
    const trimmed = entry.trim();
    const [address, prefix, ...rest] = trimmed.split('/');
    const family = isIP(address);
    const cidr =
      family !== 0 &&
      rest.length === 0 &&
      (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128)));
    if (!cidr && !PROXY_NAMES.includes(trimmed)) {
      throw new ConfigError(
        `TRUST_PROXY must list proxy addresses or CIDR ranges (or ${PROXY_NAMES.join(', ')}), comma-separated; got '${trimmed}'`,
      );
    }
    return trimmed;
  });
}

/** MASTER_KEY when set, else the development master key of the data folder (`dev`, present when MASTER_KEY is not). */
function masterKeyOf(env: Env, dev: DevSecrets | undefined): Uint8Array {
  const [raw, source] = env.MASTER_KEY ? [env.MASTER_KEY, 'MASTER_KEY'] : [dev!.masterKey, 'the development master key'];
  return base64MasterKey(raw, source);
}

function base64MasterKey(raw: string, source: string): Uint8Array {
  const key = Buffer.from(raw.trim(), 'base64');
  if (key.length !== 32 || key.toString('base64') !== raw.trim()) {
    throw new ConfigError(`${source} must be 32 bytes in base64 (openssl rand -base64 32)`);
  }
  return new Uint8Array(key);
}

/** OTHER_MASTER_KEYS: comma-separated, each as MASTER_KEY is written. */
function otherMasterKeysOf(env: Env): Uint8Array[] {
  const listed = (env.OTHER_MASTER_KEYS ?? '').split(',').filter((key) => key.trim() !== '');
  return listed.map((raw, index) => base64MasterKey(raw, `OTHER_MASTER_KEYS' key ${index + 1}`));
}

/** Production keys copied from a development data folder's dev-secrets.json are known to whoever ran it there. */
function refuseDevelopmentSecrets(env: NodeJS.ProcessEnv, dev: DevSecrets | undefined): void {
  if (!dev) return;
  const reused = [
    env.MASTER_KEY?.trim() === dev.masterKey ? 'MASTER_KEY' : undefined,
    env.JWT_PRIVATE_KEY?.trim() === dev.jwtPrivateKeyPem.trim() ? 'JWT_PRIVATE_KEY' : undefined,
  ].filter(Boolean);
  if (reused.length > 0) {
    throw new ConfigError(
      `NODE_ENV=production with ${reused.join(' and ')} of DATA_DIR/dev-secrets.json: production needs secrets of its own`,
    );
  }
}

function checkJwtKeys(privateKeyPem: string, publicKeyPem: string): void {
  try {
    const key = createPrivateKey(privateKeyPem);
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('not P-256');
    // A public key from one place and the private key from another (a rotation half done) would refuse every token.
    const given = createPublicKey(publicKeyPem).export({ format: 'der', type: 'spki' });
    if (!given.equals(createPublicKey(key).export({ format: 'der', type: 'spki' }))) throw new Error('the two keys are not a pair');
  } catch (error) {
    throw new ConfigError(
      `JWT_PRIVATE_KEY must be a P-256 private key in PEM (ES256) and JWT_PUBLIC_KEY its public key: ${(error as Error).message}`,
    );
  }
}

/** `name=ip,…` (ACME_STATIC_HOSTS): names resolved before DNS when validating challenges. */
function staticHosts(raw: string | undefined): Record<string, string> {
  const hosts: Record<string, string> = {};
  for (const entry of (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)) {
    const [name, address, ...rest] = entry.split('=');
    if (!name || !address || rest.length > 0 || isIP(address) === 0)
      throw new ConfigError(`ACME_STATIC_HOSTS entries must be name=ip, got '${entry}'`);
    hosts[name.toLowerCase()] = address;
  }
  return hosts;
}

/** ACME_DNS_SERVER: `host:port` or `host` (port 53); IPv6 as `[addr]:port`. */
function dnsServer(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const match = raw.match(/^(?:\[([0-9a-fA-F:.]+)\]|([^:]+))(?::(\d{1,5}))?$/);
  const host = match?.[1] ?? match?.[2];
  if (!host || isIP(host) === 0 || Number(match?.[3] ?? 53) > 65535)
    throw new ConfigError(`ACME_DNS_SERVER must be ip[:port] (IPv6 as [ip]:port), got '${raw}'`);
  return raw;
}

function tlsFiles(env: Env): Config['tls'] {
  const certFile = env.TLS_CERT_FILE;
  const keyFile = env.TLS_KEY_FILE;
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together');
  try {
    const tls = { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
    // Both parse, and the key is the certificate's ("key values mismatch" otherwise), before anything listens.
    createSecureContext(tls);
    return tls;
  } catch (error) {
    throw new ConfigError(`TLS_CERT_FILE/TLS_KEY_FILE: ${(error as Error).message}`);
  }
}

function billingCatalog(env: Env): PriceCatalog {
  try {
    return loadPriceCatalog(env);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** Names reserved for documentation and testing (RFC 2606, RFC 6761): never where relying parties fetch CRLs. */
const PLACEHOLDER_HOST = /(^|\.)(example\.(com|net|org)|example|invalid|test|localhost)$/i;

/** Addresses no relying party reaches this deployment at: its own loopback, or "any address" (IPv4-mapped forms too). */
const UNREACHABLE_ADDRESSES = new BlockList();
UNREACHABLE_ADDRESSES.addSubnet('127.0.0.0', 8, 'ipv4');
UNREACHABLE_ADDRESSES.addAddress('0.0.0.0', 'ipv4');
UNREACHABLE_ADDRESSES.addAddress('::1', 'ipv6');
UNREACHABLE_ADDRESSES.addAddress('::', 'ipv6');

/** Whether certificates could carry `hostname` (a URL's, IPv6 in brackets) as where to fetch CRLs and OCSP. */
function isPublishableHost(hostname: string): boolean {
  const host = hostname.replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');
  const family = isIP(host);
  if (family !== 0) return !UNREACHABLE_ADDRESSES.check(host, family === 6 ? 'ipv6' : 'ipv4');
  return !PLACEHOLDER_HOST.test(host);
}

/**
 * A base URL that paths are appended to, so that every certificate carries the result: trimmed (an env file's CR,
 * a stray space) and without trailing slashes. Credentials, a query or a fragment would end up inside each URL built
 * on it (`…/?a=1/crl/x.crl`, `…/#f/crl/x.crl` fetching `/`), so they are refused. `parseAs` is the text to parse
 * when the value has placeholders.
 */
function baseUrl(name: string, raw: string, what: string, parseAs = (text: string) => text): { text: string; url: URL } {
  const text = raw.trim().replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(parseAs(text));
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`${name} must be ${what}, got '${text}'`);
  }
  const authority = text.slice(url.protocol.length + 2).split('/')[0]!;
  if (authority.includes('@') || /[?#]/.test(text)) {
    throw new ConfigError(`${name} is a base for paths: no credentials, query or fragment, got '${text}'`);
  }
  return { text, url };
}

function publicBaseUrlOf(raw: string, production: boolean, given: boolean): string {
  const { text, url } = baseUrl('PUBLIC_BASE_URL', raw, 'an absolute http(s) URL');
  // Every certificate carries this URL (CRL, CA certificate, OCSP): a production deployment must name its own, not a
  // placeholder or a loopback address (with a trailing dot, the same host).
  if (production && (!given || !isPublishableHost(url.hostname))) {
    throw new ConfigError(
      `NODE_ENV=production requires PUBLIC_BASE_URL to be this deployment's public address (certificates carry it), got '${given ? text : ''}'`,
    );
  }
  return text;
}

/**
 * DATABASE_URL, with DATABASE_PASSWORD put in when the password is kept apart (an RDS-managed secret's `#password`);
 * undefined for the embedded database. Pass the environment with its secret references resolved.
 */
export function databaseUrl(env: Env): string | undefined {
  const raw = env.DATABASE_URL || undefined;
  if (!raw && env.DATABASE_PASSWORD) throw new ConfigError('DATABASE_PASSWORD is set without DATABASE_URL: no database would use it');
  if (!raw) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || !['postgres:', 'postgresql:'].includes(url.protocol)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// connection string');
  }
  if (!env.DATABASE_PASSWORD) return raw;
  // Percent-encoded: the driver decodes the URL's password, so a secret's own "%2F" must reach it as "%252F".
  url.password = encodeURIComponent(env.DATABASE_PASSWORD);
  return url.toString();
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** S3's bucket naming rules (OBS has the same): also safe as one folder name. */
export const BUCKET_NAME = /^(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function crlPublication(env: Env): CrlPublicationConfig | undefined {
  const buckets = (env.CRL_PUBLISH_BUCKETS ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const related = ['CRL_PUBLIC_BASE_URL', 'CRL_PUBLISH_DIR', 'CRL_S3_ENDPOINT', 'CRL_S3_REGION', 'CRL_S3_FORCE_PATH_STYLE'].filter(
    (name) => env[name],
  );
  if (buckets.length === 0) {
    if (related.length > 0)
      throw new ConfigError(`${related.join(', ')} configure CRL publication, which CRL_PUBLISH_BUCKETS turns on: set it too`);
    return undefined;
  }
  for (const bucket of buckets) {
    if (!BUCKET_NAME.test(bucket))
      throw new ConfigError(`CRL_PUBLISH_BUCKETS: '${bucket}' is not a bucket name (3-63 lowercase letters, digits, '.' and '-')`);
  }
  const { text: publicBaseUrl } = baseUrl(
    'CRL_PUBLIC_BASE_URL',
    env.CRL_PUBLIC_BASE_URL ?? '',
    'the absolute http(s) URL the published objects are fetched from ({bucket} stands for the bucket)',
    (text) => text.replaceAll('{bucket}', buckets[0]!),
  );
  if (env.CRL_PUBLISH_DIR) {
    const s3Settings = related.filter((name) => name.startsWith('CRL_S3_'));
    if (s3Settings.length > 0)
      throw new ConfigError(`${s3Settings.join(', ')} configure S3, and CRL_PUBLISH_DIR publishes to a folder: give one`);
    return { buckets, publicBaseUrl, target: { kind: 'directory', directory: path.resolve(env.CRL_PUBLISH_DIR) } };
  }
  const endpoint = env.CRL_S3_ENDPOINT || undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+\/?$/.test(endpoint))
    throw new ConfigError(`CRL_S3_ENDPOINT must be http(s)://host[:port], got '${endpoint}'`);
  return {
    buckets,
    publicBaseUrl,
    target: {
      kind: 's3',
      endpoint,
      region: env.CRL_S3_REGION || undefined,
      forcePathStyle: boolean(env, 'CRL_S3_FORCE_PATH_STYLE', false),
    },
  };
}

/** Where the process runs: a Lambda deployment has no embedded database and serves one request at a time. */
export type Target = 'server' | 'lambda';

/** One request at a time per Lambda container, and a request holds at most two connections. */
export const LAMBDA_POOL_SIZE = 2;
export const SERVER_POOL_SIZE = 10;
/**
 * How long a query on the pool waits for its answer (DATABASE_QUERY_TIMEOUT_MS; migrations run on a connection of their
 * own, unbounded). Our slowest statements take seconds (writing a CRL of a million entries: 3.5 s, bench/crl) and a
 * lock wait ends at 10 s (LOCK_WAIT_MS in src/db/database.ts): an answer still missing past this means a database that
 * stopped answering, and the request gets its 503 before a Lambda function's 29 s timeout.
 */
export const QUERY_WAIT_MS = 20_000;

/** WORKERS: 1 by default; more share the server's port, each with its own pool and key-store sessions. */
function workers(env: Env): number {
  const count = integer(env, 'WORKERS', 1, 1, 64);
  if (count > 1 && !databaseUrl(env)) {
    throw new ConfigError('WORKERS above 1 needs DATABASE_URL: the embedded PGlite database serves one process only');
  }
  return count;
}

export function loadConfig(env: Env = process.env, target: Target = 'server'): Config {
  const host = env.HOST || '127.0.0.1';
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const region = env.REGION || 'cn-north-4';
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(region)) throw new ConfigError(`REGION must be lowercase letters, digits and '-', got '${region}'`);
  // The server's own address by default, in the scheme it speaks (TLS_CERT_FILE: HTTPS only, as ACME clients need).
  const scheme = env.TLS_CERT_FILE ? 'https' : 'http';
  const production = env.NODE_ENV === 'production';
  const publicBaseUrl = publicBaseUrlOf(
    env.PUBLIC_BASE_URL?.trim() || `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    production,
    Boolean(env.PUBLIC_BASE_URL?.trim()),
  );
  if (target === 'lambda' && !env.DATABASE_URL) {
    throw new ConfigError('DATABASE_URL is required on Lambda: the bundle has no embedded database');
  }
  const dataDir = path.resolve(env.DATA_DIR || 'data');

  // Half a pair would be completed from a generated key and then refused as "not a pair": name the missing half.
  if (Boolean(env.JWT_PRIVATE_KEY) !== Boolean(env.JWT_PUBLIC_KEY)) {
    throw new ConfigError(
      `JWT_PRIVATE_KEY and JWT_PUBLIC_KEY go together: ${env.JWT_PRIVATE_KEY ? 'JWT_PUBLIC_KEY' : 'JWT_PRIVATE_KEY'} is missing`,
    );
  }
  const needsDevSecrets = !env.MASTER_KEY || !env.JWT_PRIVATE_KEY;
  if (needsDevSecrets && production) {
    throw new ConfigError('NODE_ENV=production requires MASTER_KEY, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY');
  }
  // Each Lambda container would generate secrets of its own in its /tmp: a CA key sealed in one could not be unsealed
  // in the next, and one's tokens would be refused by the others. HOST's loopback default cannot guard this there.
  if (needsDevSecrets && target === 'lambda') {
    throw new ConfigError(
      'Lambda requires MASTER_KEY, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY (or their *_SECRET_ARN): each container would generate its own',
    );
  }
  if (needsDevSecrets && !isLoopback(host) && !boolean(env, 'ALLOW_DEV_ON_PUBLIC', false)) {
    throw new ConfigError(
      `development mode (generated secrets, a printed admin token) listens on loopback only, and HOST=${host} is not a loopback address: ` +
        'set MASTER_KEY, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY, or ALLOW_DEV_ON_PUBLIC=1 to expose a development deployment anyway',
    );
  }
  if (production) refuseDevelopmentSecrets(env, existingDevSecrets(dataDir));
  const dev = needsDevSecrets ? loadOrCreateDevSecrets(dataDir) : undefined;
  const masterKey = masterKeyOf(env, dev);
  const jwtPrivateKeyPem = env.JWT_PRIVATE_KEY ?? dev!.jwtPrivateKeyPem;
  const jwtPublicKeyPem = env.JWT_PUBLIC_KEY ?? dev!.jwtPublicKeyPem;
  checkJwtKeys(jwtPrivateKeyPem, jwtPublicKeyPem);

  const defaultKind = oneOf(env, 'KEY_STORE', KEY_STORE_KINDS, 'software');
  const pkcs11 = env.PKCS11_LIBRARY
    ? {
        library: env.PKCS11_LIBRARY,
        slot: env.PKCS11_SLOT ? integer(env, 'PKCS11_SLOT', 0, 0, 2 ** 32 - 1) : undefined,
        tokenLabel: env.PKCS11_TOKEN_LABEL || undefined,
        pin: env.PKCS11_PIN ?? '',
      }
    : undefined;
  if (defaultKind === 'pkcs11' && !pkcs11) throw new ConfigError('KEY_STORE=pkcs11 requires PKCS11_LIBRARY and PKCS11_PIN');
  if (pkcs11 && !pkcs11.pin) throw new ConfigError('PKCS11_PIN is required with PKCS11_LIBRARY');
  // The module is loaded at the first key operation (a token may come and go); a path that names no file never will.
  // (A bare file name is the loader's to find on its search path.)
  if (pkcs11?.library.includes('/') && !existsSync(pkcs11.library)) {
    throw new ConfigError(`PKCS11_LIBRARY: no file at '${pkcs11.library}'`);
  }
  const orphans = ['PKCS11_SLOT', 'PKCS11_TOKEN_LABEL', 'PKCS11_PIN'].filter((name) => env[name]);
  if (!pkcs11 && orphans.length > 0) throw new ConfigError(`${orphans.join(', ')} set without PKCS11_LIBRARY: no token would be used`);

  const logFormat = oneOf(env, 'LOG_FORMAT', LOG_FORMATS, needsDevSecrets || env.NODE_ENV === 'development' ? 'pretty' : 'json');
  const metricsToken = env.METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && metricsToken.length < MIN_METRICS_TOKEN_LENGTH) {
    throw new ConfigError(`METRICS_TOKEN must be at least ${MIN_METRICS_TOKEN_LENGTH} characters (openssl rand -hex 32)`);
  }

  const defaultDomainId = env.DEFAULT_DOMAIN_ID || dev?.domainId || 'default';
  if (!isDomainId(defaultDomainId)) throw new ConfigError('DEFAULT_DOMAIN_ID must be 1-64 characters without ":" or spaces');

  return {
    host,
    port,
    region,
    publicBaseUrl,
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    logFormat,
    metricsToken,
    dataDir,
    databaseUrl: databaseUrl(env),
    databasePoolSize: integer(env, 'DATABASE_POOL_SIZE', target === 'lambda' ? LAMBDA_POOL_SIZE : SERVER_POOL_SIZE, 1, 500),
    databaseQueryWaitMs: integer(env, 'DATABASE_QUERY_TIMEOUT_MS', QUERY_WAIT_MS, 1000, 3_600_000),
    autoMigrate: boolean(env, 'AUTO_MIGRATE', true),
    runJobs: boolean(env, 'RUN_JOBS', true),
    workers: workers(env),
    masterKey,
    otherMasterKeys: otherMasterKeysOf(env),
    keyStore: { defaultKind, pkcs11 },
    jwt: {
      privateKeyPem: jwtPrivateKeyPem,
      publicKeyPem: jwtPublicKeyPem,
      issuer: env.JWT_ISSUER || 'private-ca-service',
      audience: env.JWT_AUDIENCE || 'private-ca-api',
      ttlSeconds: integer(env, 'JWT_TTL_SECONDS', 3600, 60, 86400),
    },
    defaultDomainId,
    quotas: {
      ca: integer(env, 'CA_QUOTA', 100, 0, 1_000_000),
      certificate: integer(env, 'CERTIFICATE_QUOTA', 100_000, 0, 100_000_000),
      freeCertificatesPerCa: integer(env, 'FREE_CERTIFICATES_PER_CA', 0, 0, 100_000_000),
      // Each key has a rate-limit budget of its own, within its domain's (DOMAIN_RATE_LIMIT_MAX).
      accessKey: integer(env, 'ACCESS_KEY_QUOTA', 50, 1, 10_000),
    },
    billing: billingCatalog(env),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 60_000, 1000, 3_600_000),
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 25_000, 100, 3_600_000),
    rateLimit: rateLimit(env),
    auditRetentionDays: env.AUDIT_RETENTION_DAYS ? integer(env, 'AUDIT_RETENTION_DAYS', 0, 1, 36_500) : undefined,
    acme: {
      http01Port: integer(env, 'ACME_HTTP01_PORT', 80, 1, 65535),
      tlsAlpn01Port: integer(env, 'ACME_TLSALPN01_PORT', 443, 1, 65535),
      dnsServer: dnsServer(env.ACME_DNS_SERVER),
      staticHosts: staticHosts(env.ACME_STATIC_HOSTS),
    },
    tls: tlsFiles(env),
    trustProxy: trustProxy(env),
    crlPublication: crlPublication(env),
    development: needsDevSecrets,
  };
}

/** What opening a deployment's database and key stores needs (src/runtime.ts). */
export type RuntimeConfig = Pick<
  Config,
  'dataDir' | 'databaseUrl' | 'databasePoolSize' | 'databaseQueryWaitMs' | 'autoMigrate' | 'masterKey' | 'otherMasterKeys'
> & {
  keyStore: Pick<Config['keyStore'], 'pkcs11'>;
};

/**
 * What `npm run rotate-master-key` needs: the database and the current master key, not the JWT keys a server needs,
 * and no secret generated: a development deployment's master key is read from its data folder, never made.
 */
export function loadMaintenanceConfig(env: Env): RuntimeConfig {
  const dataDir = path.resolve(env.DATA_DIR || 'data');
  const url = databaseUrl(env);
  const dev = env.MASTER_KEY ? undefined : existingDevSecrets(dataDir);
  if (!env.MASTER_KEY && !dev) {
    throw new ConfigError(`MASTER_KEY (the current master key) is required: ${dataDir} holds no development secrets`);
  }
  const masterKey = masterKeyOf(env, dev);
  // The rotation rewrites every sealed row in one transaction: its statements are not held to the service's bound.
  return {
    dataDir,
    databaseUrl: url,
    databasePoolSize: 2,
    databaseQueryWaitMs: 3_600_000,
    autoMigrate: false,
    masterKey,
    otherMasterKeys: otherMasterKeysOf(env),
    keyStore: { pkcs11: undefined },
  };
}

/** What a migration run needs, and nothing else: the database (the `migrate` Lambda and `npm run db:migrate`). */
export function loadMigrationConfig(env: Env = process.env): { databaseUrl: string } {
  const url = databaseUrl(env);
  if (!url) throw new ConfigError('DATABASE_URL is required to migrate a Lambda deployment');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('DATABASE_URL must be a postgres:// connection string');
  return { databaseUrl: url };
}
