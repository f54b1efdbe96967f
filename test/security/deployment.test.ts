/**
 * Deployment hardening (issue #13, items 11 and 15): development mode only on loopback; X-Forwarded-* are believed only from the proxies TRUST_PROXY names,
 * so a client can pick neither the address the public rate limit counts nor the host a signature is checked
 * against. A probe route shows what the app makes of a request.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import t from 'tap';
import type { FastifyInstance } from 'fastify';
import { createTestApp, SOFTWARE_KEYS_ONLY, testConfig } from '../helpers/app.ts';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { loadOrCreateDevSecrets } from '../../src/config/dev-secrets.ts';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { createSealer } from '../../src/keystore/sealing.ts';
import { serverCertificate } from '../acme/support.ts';
import { scratch } from '../certificates/support.ts';

const probe = (app: FastifyInstance) =>
  app.get('/v1/test/whoami', { config: { public: true } }, async (request) => ({
    ip: request.ip,
    host: request.host,
    protocol: request.protocol,
  }));

const forwarded = {
  'x-forwarded-for': '198.51.100.1',
  'x-forwarded-host': 'pca.attacker.example',
  'x-forwarded-proto': 'https',
  host: 'pca.internal:8080',
};

async function whoami(app: FastifyInstance, remoteAddress: string) {
  return (await app.inject({ method: 'GET', url: '/v1/test/whoami', headers: forwarded, remoteAddress })).json();
}

t.test('by default no proxy is trusted: the socket decides', async (t) => {
  const harness = await createTestApp({ extraRoutes: probe });
  t.teardown(() => harness.close());
  t.same(await whoami(harness.app, '203.0.113.9'), { ip: '203.0.113.9', host: 'pca.internal:8080', protocol: 'http' });
  t.same(await whoami(harness.app, '127.0.0.1'), { ip: '127.0.0.1', host: 'pca.internal:8080', protocol: 'http' }, 'not even loopback');
});

t.test('TRUST_PROXY: the configured proxies only', async (t) => {
  const harness = await createTestApp({ env: { TRUST_PROXY: '10.0.0.0/8, 2001:db8::1' }, extraRoutes: probe });
  t.teardown(() => harness.close());
  const viaProxy = { ip: '198.51.100.1', host: 'pca.attacker.example', protocol: 'https' };
  t.same(await whoami(harness.app, '10.1.2.3'), viaProxy, 'a proxy in the range is believed');
  t.same(await whoami(harness.app, '2001:db8::1'), viaProxy, 'an IPv6 proxy');
  t.same(
    await whoami(harness.app, '203.0.113.9'),
    { ip: '203.0.113.9', host: 'pca.internal:8080', protocol: 'http' },
    'anyone else is not',
  );
});

t.test('TRUST_PROXY is validated', async (t) => {
  t.same(testConfig().trustProxy, []);
  t.same(testConfig({ TRUST_PROXY: 'loopback,192.0.2.0/24' }).trustProxy, ['loopback', '192.0.2.0/24']);
  for (const bad of ['true', '*', '10.0.0.0/33', '::1/129', 'proxy.example', '10.0.0.1,']) {
    t.throws(() => testConfig({ TRUST_PROXY: bad }), ConfigError, bad);
  }
});

t.test('PUBLIC_BASE_URL defaults to the scheme the server speaks: https with TLS_CERT_FILE', async (t) => {
  t.equal(testConfig({ HOST: '127.0.0.1', PORT: '8443', PUBLIC_BASE_URL: '' }).publicBaseUrl, 'http://127.0.0.1:8443');
  const tls = await serverCertificate(await scratch('deployment-tls'));
  const config = testConfig({
    HOST: '127.0.0.1',
    PORT: '8443',
    PUBLIC_BASE_URL: '',
    TLS_CERT_FILE: tls.certFile,
    TLS_KEY_FILE: tls.keyFile,
  });
  t.equal(config.publicBaseUrl, 'https://127.0.0.1:8443', "ACME directories and the certificates' URLs reachable");
});

t.test('PUBLIC_BASE_URL and CRL_PUBLIC_BASE_URL: trimmed, and refused with credentials, a query or a fragment', async (t) => {
  t.equal(testConfig({ PUBLIC_BASE_URL: ' https://pca.corp.internal/pki/\r' }).publicBaseUrl, 'https://pca.corp.internal/pki');
  const crl = (base: string) =>
    testConfig({ CRL_PUBLISH_BUCKETS: 'pca-crls', CRL_PUBLISH_DIR: '/tmp/pca-crls', CRL_PUBLIC_BASE_URL: base });
  t.equal(crl('https://{bucket}.s3.example.com/\r').crlPublication?.publicBaseUrl, 'https://{bucket}.s3.example.com');
  for (const bad of ['https://pca.corp.internal/#frag', 'https://pca.corp.internal/?a=1', 'https://user:pw@pca.corp.internal']) {
    // Each would sit inside every CRL, CA certificate and OCSP URL a certificate carries.
    t.throws(() => testConfig({ PUBLIC_BASE_URL: bad }), { name: 'ConfigError', message: /PUBLIC_BASE_URL is a base for paths/ }, bad);
    t.throws(() => crl(bad.replace('pca.corp.internal', '{bucket}.s3.example.com')), { message: /CRL_PUBLIC_BASE_URL is a base/ }, bad);
  }
  t.equal(
    testConfig({ PUBLIC_BASE_URL: 'https://pca.corp.internal/a@b' }).publicBaseUrl,
    'https://pca.corp.internal/a@b',
    "'@' in a path is a path",
  );
});

t.test('TLS files that are not a certificate and its own key stop the start, naming the variables', async (t) => {
  const dir = await scratch('deployment-tls-mismatch');
  const [one, two] = [await serverCertificate(dir), await serverCertificate(await scratch('deployment-tls-other'))];
  const notPem = await dir.write('not.pem', 'not a certificate');
  for (const [name, certFile, keyFile, message] of [
    ['a key of another certificate', one.certFile, two.keyFile, /key values mismatch/],
    ['a certificate file that is not PEM', notPem, one.keyFile, /.+/],
  ] as const) {
    t.throws(
      () => testConfig({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile }),
      { name: 'ConfigError', message: /^TLS_CERT_FILE\/TLS_KEY_FILE: / },
      name,
    );
    t.throws(() => testConfig({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile }), { message }, name);
  }
});

t.test('PKCS#11 settings without PKCS11_LIBRARY stop the start rather than being ignored', async (t) => {
  for (const env of [{ PKCS11_SLOT: 'abc' }, { PKCS11_TOKEN_LABEL: 'x' }, { PKCS11_PIN: '1234' }] as Record<string, string>[]) {
    t.throws(
      () => testConfig({ ...SOFTWARE_KEYS_ONLY, ...env }),
      { name: 'ConfigError', message: /set without PKCS11_LIBRARY/ },
      JSON.stringify(env),
    );
  }
});

t.test('a PKCS11_LIBRARY path naming no file stops the start; a bare file name is left to the loader', async (t) => {
  const pkcs11 = { ...SOFTWARE_KEYS_ONLY, PKCS11_PIN: '1234' };
  t.throws(() => testConfig({ ...pkcs11, PKCS11_LIBRARY: '/nonexistent/libpkcs11.so' }), {
    name: 'ConfigError',
    message: "PKCS11_LIBRARY: no file at '/nonexistent/libpkcs11.so'",
  });
  // Any file passes the start's check: the module itself is loaded at the first key operation.
  const library = path.join(mkdtempSync(path.join(os.tmpdir(), 'pca-pkcs11-')), 'module.so');
  writeFileSync(library, '');
  t.equal(testConfig({ ...pkcs11, PKCS11_LIBRARY: library, PKCS11_SLOT: '2' }).keyStore.pkcs11?.slot, 2);
  t.equal(testConfig({ ...pkcs11, PKCS11_LIBRARY: 'libsofthsm2.so' }).keyStore.pkcs11?.library, 'libsofthsm2.so');
});

t.test('half a JWT key pair, or DATABASE_PASSWORD without DATABASE_URL, stops the start naming what is missing', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-half-'));
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const JWT_PRIVATE_KEY = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const JWT_PUBLIC_KEY = pair.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.throws(() => loadConfig({ DATA_DIR: dataDir, JWT_PRIVATE_KEY }), { name: 'ConfigError', message: /JWT_PUBLIC_KEY is missing/ });
  t.throws(() => loadConfig({ DATA_DIR: dataDir, JWT_PUBLIC_KEY }), { name: 'ConfigError', message: /JWT_PRIVATE_KEY is missing/ });
  t.notOk(existsSync(path.join(dataDir, 'dev-secrets.json')), 'no development secret generated on the way');
  t.throws(() => testConfig({ DATABASE_PASSWORD: 'secret' }), {
    name: 'ConfigError',
    message: /DATABASE_PASSWORD is set without DATABASE_URL/,
  });
});

t.test('DEFAULT_DOMAIN_ID is a domain id tokens may carry', async (t) => {
  t.equal(testConfig({ DEFAULT_DOMAIN_ID: 'platform-team' }).defaultDomainId, 'platform-team');
  for (const bad of ['a:b', 'a b', 'x'.repeat(65)]) {
    t.throws(() => testConfig({ DEFAULT_DOMAIN_ID: bad }), { name: 'ConfigError', message: /DEFAULT_DOMAIN_ID/ }, bad);
  }
});

t.test('JWT_PUBLIC_KEY must be the public key of JWT_PRIVATE_KEY: a mismatch fails at start, not on every token', async (t) => {
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.throws(() => testConfig({ JWT_PUBLIC_KEY: other }), {
    name: 'ConfigError',
    message: /JWT_PUBLIC_KEY its public key: the two keys are not a pair/,
  });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
  t.throws(() => testConfig({ JWT_PUBLIC_KEY: rsa }), { name: 'ConfigError', message: /not a pair/ });
  t.ok(testConfig().jwt, 'the pair itself is accepted');
});

t.test("production refuses the development data folder's own secrets (dev-secrets.json)", async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-dev-reuse-'));
  const dev = loadOrCreateDevSecrets(dataDir);
  const production = { DATA_DIR: dataDir, NODE_ENV: 'production', PUBLIC_BASE_URL: 'https://pca.corp.internal' };
  const own = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ownJwt = {
    JWT_PRIVATE_KEY: own.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    JWT_PUBLIC_KEY: own.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
  const devJwt = { JWT_PRIVATE_KEY: dev.jwtPrivateKeyPem, JWT_PUBLIC_KEY: dev.jwtPublicKeyPem };
  const ownMaster = randomBytes(32).toString('base64');
  t.throws(() => loadConfig({ ...production, ...ownJwt, MASTER_KEY: dev.masterKey }), {
    name: 'ConfigError',
    message: /with MASTER_KEY of DATA_DIR\/dev-secrets.json/,
  });
  t.throws(() => loadConfig({ ...production, ...devJwt, MASTER_KEY: ownMaster }), {
    name: 'ConfigError',
    message: /with JWT_PRIVATE_KEY of DATA_DIR/,
  });
  t.equal(loadConfig({ ...production, ...ownJwt, MASTER_KEY: ownMaster }).development, false, 'secrets of its own start');
  t.equal(loadConfig({ DATA_DIR: dataDir, ...devJwt, MASTER_KEY: dev.masterKey }).development, false, 'outside production: no refusal');
});

t.test('development mode (generated secrets) only on loopback, unless ALLOW_DEV_ON_PUBLIC=1', async (t) => {
  const dev = (env: Record<string, string>) => loadConfig({ DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pca-dev-host-')), ...env });
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '::ffff:127.0.0.1'])
    t.equal(dev({ HOST: host }).development, true, host);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', 'pca.example.com']) {
    t.throws(() => dev({ HOST: host }), { name: 'ConfigError', message: /listens on loopback only/ }, host);
  }
  t.equal(dev({ HOST: '0.0.0.0', ALLOW_DEV_ON_PUBLIC: '1' }).host, '0.0.0.0', 'the explicit opt-in');
  t.equal(testConfig({ HOST: '0.0.0.0' }).development, false, 'given secrets: any address');
});

t.test('never on Lambda: a function without its secrets does not start, whatever NODE_ENV and HOST say', async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-dev-lambda-'));
  const lambda = { DATABASE_URL: 'postgres://pca@db.corp.internal/pca', PUBLIC_BASE_URL: 'https://pca.corp.example', DATA_DIR: dataDir };
  for (const env of [lambda, { ...lambda, NODE_ENV: 'development' }, { ...lambda, ALLOW_DEV_ON_PUBLIC: '1' }]) {
    t.throws(() => loadConfig(env, 'lambda'), { name: 'ConfigError', message: /Lambda requires MASTER_KEY/ }, JSON.stringify(env));
  }
  t.notOk(existsSync(path.join(dataDir, 'dev-secrets.json')), 'no secrets generated');
  t.equal(loadConfig(lambda, 'server').development, true, 'the same settings on a server (loopback HOST): development mode');
});

t.test(
  'integer settings are decimal digits: blank, hexadecimal and exponent forms stop the start; spaces around are dropped',
  async (t) => {
    for (const [name, value] of [
      ['PORT', ' '],
      ['CA_QUOTA', '  '],
      ['CERTIFICATE_QUOTA', '0x3e8'],
      ['RATE_LIMIT_MAX', '1e3'],
      ['WORKERS', '+2'],
    ]) {
      t.throws(
        () => testConfig({ [name!]: value! }),
        { name: 'ConfigError', message: new RegExp(`${name} must be an integer`) },
        `${name}='${value}'`,
      );
    }
    t.equal(testConfig({ CERTIFICATE_QUOTA: '1000' }).quotas.certificate, 1000, 'digits are read');
    t.equal(testConfig({ PORT: '0' }).port, 0);
    t.equal(testConfig({ PORT: ' 8443\r' }).port, 8443, "spaces, or an env file's CR, around the digits are dropped");
    t.equal(testConfig({ LOG_LEVEL: 'warn\r' }).logLevel, 'warn', 'and around a word of a list');
    t.equal(testConfig({ AUTO_MIGRATE: ' false\r' }).autoMigrate, false, 'and around a switch');
  },
);

t.test(
  'OTHER_MASTER_KEYS: an instance moved to a new master key opens what the old one sealed; a malformed key stops the start',
  async (t) => {
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const harness = await createTestApp({
      env: {
        MASTER_KEY: newKey.toString('base64'),
        OTHER_MASTER_KEYS: ` ${randomBytes(32).toString('base64')}, ${oldKey.toString('base64')} `,
      },
    });
    t.teardown(() => harness.close());
    const created = await harness.app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} });
    const { access, secret } = created.json().credential as { access: string; secret: string };
    // As an instance still on the old key stores it.
    await harness.database.prisma.accessKey.update({
      where: { access },
      data: { sealedSecret: createSealer(oldKey).seal(Buffer.from(secret, 'utf8'), access) },
    });
    const headers = { host: 'pca.example.test', 'x-sdk-date': formatSdkDate(new Date()) };
    const url = '/v1/private-certificate-authorities';
    const authorization = signRequest({ method: 'GET', url, headers, body: new Uint8Array() }, access, secret, Object.keys(headers));
    const signed = await harness.app.inject({ method: 'GET', url, headers: { ...headers, authorization } });
    t.equal(signed.statusCode, 200, `a secret sealed under the old key verifies: ${signed.body}`);
    t.throws(() => testConfig({ OTHER_MASTER_KEYS: `${oldKey.toString('base64')},c2hvcnQ=` }), {
      name: 'ConfigError',
      message: /OTHER_MASTER_KEYS' key 2 must be 32 bytes/,
    });
  },
);
