/**
 * Secrets by reference (src/secrets.ts): the real AWS SDK v3 clients (Secrets Manager, SSM) read the master key,
 * the database URL and password and the JWT keys at init. There is no real AWS here, so the test starts a small
 * local HTTP endpoint that speaks the two services' JSON protocol (test/helpers/aws-endpoints.ts) and points the
 * SDK at it with its own AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_SSM variables; the requests it
 * receives are the SDK's real signed ones. A Lambda entry then starts from references alone against Postgres.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { ConfigError, loadConfig, loadMigrationConfig } from '../../src/config.ts';
import { resolveSecretReferences } from '../../src/secrets.ts';
import { startSecretsEndpoint } from '../helpers/aws-endpoints.ts';
import { emptyRealDatabaseOrSkipTest } from '../helpers/database.ts';
import { apiGatewayEvent } from '../helpers/lambda.ts';
import { TEST_NODE_ENV } from '../helpers/server-process.ts';

const run = promisify(execFile);
const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const SECRETS = {
  masterKey: randomBytes(32).toString('base64'),
  jwtPrivateKey: jwt.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  jwtPublicKey: jwt.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  dbPassword: `p@ss/${randomBytes(6).toString('hex')}:#`,
};
const ACCOUNT = 'arn:aws:secretsmanager:eu-west-3:123456789012:secret';
const stored: Record<string, string> = {
  [`${ACCOUNT}:pca-master-key-AbCdEf`]: SECRETS.masterKey,
  [`${ACCOUNT}:pca-jwt-AbCdEf`]: JSON.stringify({ private: SECRETS.jwtPrivateKey, public: SECRETS.jwtPublicKey }),
  [`${ACCOUNT}:rds-db-credentials-AbCdEf`]: JSON.stringify({ username: 'pca', password: SECRETS.dbPassword }),
};
const parameters: Record<string, string> = { '/pca/master-key': SECRETS.masterKey, '/pca/jwt-private-key': SECRETS.jwtPrivateKey };

const endpoint = await startSecretsEndpoint(stored, parameters);
t.teardown(() => endpoint.close());
const { received } = endpoint;
// The SDK's own settings: what a Lambda function's role and region give it.
const sdkEnv = {
  ...endpoint.env,
  AWS_REGION: 'eu-central-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
Object.assign(process.env, sdkEnv);

const production = {
  NODE_ENV: 'production',
  PUBLIC_BASE_URL: 'https://pca.corp.internal',
  DATABASE_URL: 'postgres://pca@db.corp.internal:5432/pca',
};

t.test('Secrets Manager (whole secrets and #key of JSON ones) and SSM SecureString parameters', async (t) => {
  received.length = 0;
  const env = await resolveSecretReferences({
    ...production,
    MASTER_KEY_SECRET_ARN: `${ACCOUNT}:pca-master-key-AbCdEf`,
    JWT_PRIVATE_KEY_SECRET_ARN: `${ACCOUNT}:pca-jwt-AbCdEf#private`,
    JWT_PUBLIC_KEY_SECRET_ARN: `${ACCOUNT}:pca-jwt-AbCdEf#public`,
    DATABASE_PASSWORD_SECRET_ARN: `${ACCOUNT}:rds-db-credentials-AbCdEf#password`,
  });
  const config = loadConfig(env, 'lambda');
  t.same(Buffer.from(config.masterKey).toString('base64'), SECRETS.masterKey, 'master key');
  t.equal(config.jwt.privateKeyPem, SECRETS.jwtPrivateKey, 'JWT private key');
  t.equal(config.jwt.publicKeyPem, SECRETS.jwtPublicKey, 'JWT public key');
  t.equal(decodeURIComponent(new URL(config.databaseUrl!).password), SECRETS.dbPassword, 'the password goes into DATABASE_URL, escaped');
  t.equal(new URL(config.databaseUrl!).host, 'db.corp.internal:5432');
  t.equal(loadMigrationConfig(env).databaseUrl, config.databaseUrl, 'the migration function builds the same URL');
  // pg decodes the URL's password (pg-connection-string: decodeURIComponent): a secret's own escapes must survive it.
  for (const password of ['Xk%2Fq9', 'a%41b', '%', 'p@ss w:rd/?#[]']) {
    const url = loadConfig({ ...env, DATABASE_PASSWORD: password }, 'lambda').databaseUrl!;
    t.equal(decodeURIComponent(new URL(url).password), password, `DATABASE_PASSWORD ${password} reaches the driver as is`);
  }
  t.notOk(config.development, 'no generated secrets');

  t.equal(received.length, 4, 'one request per reference');
  for (const request of received) {
    t.equal(request.target, 'secretsmanager.GetSecretValue');
    t.notOk(String(request.body.SecretId).includes('#'), 'the #key selector stays on this side');
    // The region comes from the ARN, not AWS_REGION: a secret may live in another region.
    t.match(
      String(request.headers.authorization),
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-3\/secretsmanager\/aws4_request/,
      'SigV4-signed',
    );
  }

  received.length = 0;
  const fromSsm = loadConfig(
    await resolveSecretReferences({
      ...production,
      MASTER_KEY_SSM_PARAMETER: '/pca/master-key',
      JWT_PRIVATE_KEY_SSM_PARAMETER: '/pca/jwt-private-key',
      JWT_PUBLIC_KEY: SECRETS.jwtPublicKey,
    }),
    'lambda',
  );
  t.same(Buffer.from(fromSsm.masterKey).toString('base64'), SECRETS.masterKey);
  t.equal(fromSsm.jwt.privateKeyPem, SECRETS.jwtPrivateKey);
  t.same(
    received.map((request) => [request.target, request.body.WithDecryption]),
    [
      ['AmazonSSM.GetParameter', true],
      ['AmazonSSM.GetParameter', true],
    ],
    'decrypted reads',
  );
  t.match(String(received[0]!.headers.authorization), /\/eu-central-1\/ssm\/aws4_request/, 'parameter names use AWS_REGION');
});

t.test('without references nothing is asked and the environment is used as it is', async (t) => {
  received.length = 0;
  const env = { ...production, MASTER_KEY: SECRETS.masterKey };
  t.equal(await resolveSecretReferences(env), env);
  t.equal(received.length, 0);
});

t.test('a reference that cannot be read, or an ambiguous one, fails with the variable named and no value', async (t) => {
  const failures: [Record<string, string>, RegExp][] = [
    [
      { MASTER_KEY_SECRET_ARN: `${ACCOUNT}:missing-AbCdEf` },
      /^MASTER_KEY_SECRET_ARN: could not read .*missing-AbCdEf: ResourceNotFoundException/,
    ],
    [{ MASTER_KEY_SSM_PARAMETER: '/pca/missing' }, /^MASTER_KEY_SSM_PARAMETER: could not read \/pca\/missing: ParameterNotFound/],
    [
      { DATABASE_PASSWORD_SECRET_ARN: `${ACCOUNT}:rds-db-credentials-AbCdEf#pass` },
      /^DATABASE_PASSWORD_SECRET_ARN: the secret has no key 'pass'/,
    ],
    [{ MASTER_KEY_SECRET_ARN: `${ACCOUNT}:pca-master-key-AbCdEf#key` }, /asks for a key of a JSON secret, and the secret is not JSON/],
    [
      { MASTER_KEY: SECRETS.masterKey, MASTER_KEY_SECRET_ARN: `${ACCOUNT}:pca-master-key-AbCdEf` },
      /MASTER_KEY and MASTER_KEY_SECRET_ARN are exclusive/,
    ],
    [
      { JWT_PRIVATE_KEY_SECRET_ARN: 'a', JWT_PRIVATE_KEY_SSM_PARAMETER: 'b' },
      /JWT_PRIVATE_KEY_SECRET_ARN and JWT_PRIVATE_KEY_SSM_PARAMETER are exclusive/,
    ],
  ];
  for (const [references, message] of failures) {
    const error = await resolveSecretReferences({ ...production, ...references }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    t.type(error, ConfigError, Object.keys(references).join(', '));
    t.match((error as Error).message, message);
    t.notOk((error as Error).message.includes(SECRETS.masterKey), 'no secret value in the message');
  }
});

t.test('the Lambda functions start from references alone: migrate, then the HTTP handler answers', async (t) => {
  const databaseUrl = await emptyRealDatabaseOrSkipTest(t);
  if (!databaseUrl) return;
  stored[`${ACCOUNT}:pca-database-url-AbCdEf`] = databaseUrl;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...TEST_NODE_ENV,
    ...sdkEnv,
    NODE_ENV: 'production',
    PUBLIC_BASE_URL: 'https://pca.corp.internal',
    DATA_DIR: '/tmp/pca-secret-references',
    DATABASE_URL_SECRET_ARN: `${ACCOUNT}:pca-database-url-AbCdEf`,
    MASTER_KEY_SSM_PARAMETER: '/pca/master-key',
    JWT_PRIVATE_KEY_SECRET_ARN: `${ACCOUNT}:pca-jwt-AbCdEf#private`,
    JWT_PUBLIC_KEY_SECRET_ARN: `${ACCOUNT}:pca-jwt-AbCdEf#public`,
  };
  const tsx = import.meta.resolve('tsx');
  const invoke = async (entry: string, event: unknown) => {
    const module = fileURLToPath(new URL(`../../src/lambda/${entry}.ts`, import.meta.url));
    const script = `const m = await import(${JSON.stringify(module)}); console.log('\\u0001' + JSON.stringify(await m.handler(${JSON.stringify(event)}, {})));`;
    const { stdout } = await run(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], { cwd: '/', env });
    // Log lines share stdout with the result, which carries a marker.
    return JSON.parse(
      stdout
        .split('\n')
        .find((line) => line.startsWith('\u0001'))!
        .slice(1),
    ) as Record<string, unknown>;
  };
  const migrated = await invoke('migrate', {});
  t.ok((migrated.applied as string[]).length >= 3, 'migrate read DATABASE_URL from Secrets Manager');
  const health = await invoke('http', apiGatewayEvent('2.0', { method: 'GET', path: '/ready', headers: { host: 'pca.corp.internal' } }));
  t.equal(health.statusCode, 200, `ready: ${String(health.body)}`);
});

t.test('npm run db:migrate and rotate-master-key read references as the server does, and generate nothing', async (t) => {
  const databaseUrl = await emptyRealDatabaseOrSkipTest(t);
  if (!databaseUrl) return;
  stored[`${ACCOUNT}:pca-maintenance-url-AbCdEf`] = databaseUrl;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'pca-maintenance-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    ...TEST_NODE_ENV,
    ...sdkEnv,
    DATA_DIR: dataDir,
    DATABASE_URL_SECRET_ARN: `${ACCOUNT}:pca-maintenance-url-AbCdEf`,
    MASTER_KEY_SSM_PARAMETER: '/pca/master-key',
  };
  const script = (name: string, extra: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, ['--import', 'tsx', `scripts/${name}.ts`], { env: { ...env, ...extra } });
  const migrated = await script('db-migrate');
  t.match(migrated.stdout, /^DATABASE_URL: applied 20261123134329_init$/m, 'the database the reference names is migrated');
  const rotated = await script('rotate-master-key', { NEW_MASTER_KEY: ` ${randomBytes(32).toString('base64')}\n` });
  t.match(rotated.stdout, /re-wrapped 0 CA keys/, 'rotated with the master key read from SSM, without JWT keys');
  t.same(readdirSync(dataDir), [], 'no embedded database and no development secrets in DATA_DIR');
  const orphan = await script('db-migrate', { DATABASE_URL_SECRET_ARN: '', DATABASE_PASSWORD: 'secret' }).catch((error) => error);
  t.match(orphan, { code: 2, stderr: /Configuration error: DATABASE_PASSWORD is set without DATABASE_URL/ });
});
