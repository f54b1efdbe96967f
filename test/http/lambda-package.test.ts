/**
 * The deployable artefact, as a new user gets it: `npm run package`, the zip unzipped into an empty folder (its own
 * node_modules only, pkcs11js's native build removed as on another OS), migrated by its `migrate` function, then
 * its `handler` invoked in a fresh Node process started in `/` with REST API and HTTP API events for every route
 * kind, openssl and unzip judging the binary bodies; its `jobs` function runs a job. The functions take their secrets
 * by reference and publish CRLs to an s3rver, so the bundled AWS SDK clients run as they would on Lambda. They run on
 * the Node of serverless.yml's runtime, as on Lambda: LAMBDA_NODE names that binary (.ci/run installs it from the npm
 * registry's `node` package), or this process's Node when it is that version; without one they run on this Node and
 * the check on the Lambda version is skipped, saying why.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { startS3rver, startSecretsEndpoint } from '../helpers/aws-endpoints.ts';
import { parse } from 'yaml';
import { createEmptyDatabase, dropDatabase, realPostgresOrSkipFile } from '../helpers/database.ts';
import {
  apiGatewayEvent,
  deployedFunctionEnv,
  PAYLOAD_VERSIONS,
  responseBytes,
  walkEveryRouteKind,
  type LambdaResult,
} from '../helpers/lambda.ts';
import { TEST_NODE_ENV } from '../helpers/server-process.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const LAMBDA_MAJOR = Number(
  /^nodejs(\d+)\.x$/.exec(
    (parse(readFileSync(path.join(REPO, 'serverless.yml'), 'utf8')) as { provider: { runtime: string } }).provider.runtime,
  )![1],
);
const nodeVersion = async (binary: string) => (await run(binary, ['-p', 'process.versions.node'])).stdout.trim();

/** The Lambda runtime's Node, or why there is none here. */
async function lambdaNode(): Promise<{ binary: string; version: string } | { missing: string }> {
  const binary = process.env.LAMBDA_NODE || process.execPath;
  const version = await nodeVersion(binary).catch((error: Error) => `none (${error.message})`);
  if (Number.parseInt(version, 10) === LAMBDA_MAJOR) return { binary, version };
  return {
    missing: process.env.LAMBDA_NODE
      ? `LAMBDA_NODE=${binary} is Node ${version}, not serverless.yml's ${LAMBDA_MAJOR}`
      : `no Node ${LAMBDA_MAJOR} (serverless.yml's runtime) here: this is Node ${version}; set LAMBDA_NODE to one (npm install --prefix DIR node@${LAMBDA_MAJOR})`,
  };
}
const lambda = await lambdaNode();
const NODE = 'binary' in lambda ? lambda.binary : process.execPath;
const NODE_VERSION = 'version' in lambda ? lambda.version : process.versions.node;

const work = await mkdtemp(path.join(os.tmpdir(), 'pca-package-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const secretParam = (name: string) => `--param=${name}SecretArn=arn:aws:secretsmanager:eu-central-1:123456789012:secret:${name}-AbCdEf`;
await run(
  'npm',
  [
    'run',
    'package',
    '--',
    '--param=publicBaseUrl=https://pca.package.internal',
    '--param=jwtPublicKey=unused',
    secretParam('databaseUrl'),
    secretParam('masterKey'),
    secretParam('jwtPrivateKey'),
  ],
  {
    cwd: REPO,
    maxBuffer: 64 * 1024 * 1024,
  },
);
const zip = path.join(REPO, '.serverless/private-ca-service.zip');
const zipBytes = (await stat(zip)).size;
await run('unzip', ['-q', zip, '-d', work]);
const bundle = path.join(work, 'dist/lambda');

const shippedNativeBuild = existsSync(path.join(bundle, 'node_modules/pkcs11js/build/Release/pkcs11.node'));
/** What of the native module's sources and build leftovers travelled (nothing should). */
const nativeLeftovers = (await readdir(path.join(bundle, 'node_modules/pkcs11js'), { recursive: true })).filter(
  (file) => /\.(c|cc|cpp|h|hpp|gyp)$/.test(file) || /(^|\/)(obj(\.target)?|\.deps)(\/|$)/.test(file),
);
// Built by whichever Node ran npm ci; a Node-API module, so it must load on any supported Node (this is the check).
const nativeLoads = shippedNativeBuild
  ? await run(NODE, ['-e', `new (require(${JSON.stringify(path.join(bundle, 'node_modules/pkcs11js'))}).PKCS11)()`]).then(
      () => 'loads',
      (error: { stderr: string }) => error.stderr,
    )
  : 'absent';
// As on a machine whose OS or architecture the native module was not built for: the software store must serve.
await rm(path.join(bundle, 'node_modules/pkcs11js/build'), { recursive: true, force: true });

const server = await realPostgresOrSkipFile(t);
t.teardown(() => server.stop());
const databaseUrl = await createEmptyDatabase(server.url);
t.teardown(() => dropDatabase(server.url, databaseUrl));

const deployed = deployedFunctionEnv({
  databaseUrl,
  publicBaseUrl: 'https://pca.package.internal',
  DATA_DIR: path.join(work, 'tmp'),
  ...(NODE === process.execPath ? TEST_NODE_ENV : {}),
});
const { authorization } = deployed;

// The bundled AWS SDK clients at work: secrets by reference (a local endpoint speaking the Secrets Manager and SSM
// protocol; there is no real AWS here) and CRL publication to an s3rver.
const secretArn = (name: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${name}-AbCdEf`;
const secretsEndpoint = await startSecretsEndpoint(
  { [secretArn('database-url')]: databaseUrl, [secretArn('jwt-private-key')]: deployed.env.JWT_PRIVATE_KEY! },
  { '/pca/master-key': deployed.env.MASTER_KEY! },
);
t.teardown(() => secretsEndpoint.close());
const objectStorage = await startS3rver(['pca-crls']);
t.teardown(() => objectStorage.close());
const env: NodeJS.ProcessEnv = {
  ...deployed.env,
  DATABASE_URL: undefined,
  MASTER_KEY: undefined,
  JWT_PRIVATE_KEY: undefined,
  DATABASE_URL_SECRET_ARN: secretArn('database-url'),
  JWT_PRIVATE_KEY_SECRET_ARN: secretArn('jwt-private-key'),
  MASTER_KEY_SSM_PARAMETER: '/pca/master-key',
  ...secretsEndpoint.env,
  ...objectStorage.publicationEnv,
  ...objectStorage.credentials,
  AWS_REGION: 'eu-central-1',
};

/**
 * A fresh Node process in `/` that imports one of the bundle's entry modules, as Lambda's runtime does, and calls
 * its handler once per event line on stdin, answering with a result line on stdout.
 */
function startFunction(entry: string) {
  const script = `
    import { createInterface } from 'node:readline';
    const { handler } = await import(${JSON.stringify(path.join(bundle, `${entry}.mjs`))});
    for await (const line of createInterface({ input: process.stdin })) {
      const result = await handler(JSON.parse(line), {}).then((value) => ({ value }), (error) => ({ error: String(error) }));
      process.stdout.write('\\u0001' + JSON.stringify(result) + '\\n');
    }`;
  const child = spawn(NODE, ['--input-type=module', '-e', script], { cwd: '/', env, stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    // Log lines share stdout with the results, as in Lambda: results carry a marker.
    if (line.startsWith('\u0001')) waiting.shift()?.(line.slice(1));
  });
  return {
    invoke(event: unknown): Promise<unknown> {
      return new Promise((resolve, reject) => {
        waiting.push((line) => {
          const result = JSON.parse(line) as { value?: unknown; error?: string };
          if (result.error) reject(new Error(result.error));
          else resolve(result.value);
        });
        child.stdin.write(`${JSON.stringify(event)}\n`);
      });
    },
    stop: () => child.kill(),
  };
}

t.test('the zip holds the bundle and nothing else', async (t) => {
  t.ok(shippedNativeBuild, 'pkcs11js ships its native build, for deployments with a PKCS#11 store');
  t.comment(`zip: ${(zipBytes / 1024 / 1024).toFixed(1)} MB`);
  t.ok(zipBytes < 15 * 1024 * 1024, 'well under the old 28 MB');
  t.notOk(existsSync(path.join(work, 'node_modules')), 'no node_modules outside the bundle');
  for (const absent of ['prisma', 'typescript', 'tsx', '@electric-sql', 'esbuild']) {
    t.notOk(existsSync(path.join(bundle, 'node_modules', absent)), `${absent} is left out`);
  }
  t.ok(existsSync(path.join(bundle, 'prisma/migrations/migration_lock.toml')), 'the migrations travel with it');
  t.equal(nativeLoads, 'loads', `the shipped pkcs11js build loads on Node ${NODE_VERSION}`);
  t.same(nativeLeftovers, [], "none of pkcs11js's sources or build leftovers");
});

t.test(`the functions below run on Lambda's Node ${LAMBDA_MAJOR}`, { skip: 'missing' in lambda && lambda.missing }, async (t) => {
  t.equal(Number.parseInt(NODE_VERSION, 10), LAMBDA_MAJOR, `${NODE}: Node ${NODE_VERSION}`);
});

t.test(`migrate, from the zip, in /, on Node ${NODE_VERSION}`, async (t) => {
  const migrate = startFunction('migrate');
  t.teardown(migrate.stop);
  const { applied } = (await migrate.invoke({})) as { applied: string[] };
  t.ok(applied.length >= 3 && applied[0]!.endsWith('_init'), `applied ${applied.join(', ')}`);
  t.ok(
    secretsEndpoint.received.some((call) => call.body.SecretId === secretArn('database-url')),
    'its database URL came from Secrets Manager',
  );
});

t.test(`the HTTP handler from the zip serves every route kind with both payload versions on Node ${NODE_VERSION}`, async (t) => {
  const http = startFunction('http');
  t.teardown(http.stop);
  for (const version of PAYLOAD_VERSIONS) {
    await t.test(`payload ${version}`, (t) =>
      walkEveryRouteKind(t, (event) => http.invoke(event) as Promise<LambdaResult>, version, authorization),
    );
  }
  t.same(
    new Set(secretsEndpoint.received.map((call) => call.target)),
    new Set(['secretsmanager.GetSecretValue', 'AmazonSSM.GetParameter']),
    'its secrets came by reference',
  );

  // Swagger UI is bundled but serves its files from the copy of its package folder beside the bundle.
  const swaggerUi = path.join(REPO, 'node_modules/@fastify/swagger-ui/static');
  const get = async (url: string) => (await http.invoke(apiGatewayEvent('2.0', { method: 'GET', path: url }))) as LambdaResult;
  const page = await get('/docs');
  t.equal(page.statusCode, 200, 'Swagger UI: its page');
  const script = await get('/docs/static/swagger-ui-bundle.js');
  t.equal(script.statusCode, 200, 'Swagger UI: its script');
  t.ok(responseBytes(script).equals(readFileSync(path.join(swaggerUi, 'swagger-ui-bundle.js'))), 'Swagger UI: its script, byte for byte');
  const initializer = responseBytes(await get('/docs/static/swagger-initializer.js')).toString();
  t.ok(
    initializer.includes(readFileSync(path.join(swaggerUi, 'logo.svg')).toString('base64')),
    'Swagger UI: its logo, read from the package folder',
  );

  // Each walk revoked a certificate of its own CA: both CRLs went to the bucket beside their CA certificates.
  const listed = await objectStorage.client.send(new ListObjectsV2Command({ Bucket: 'pca-crls' }));
  const crlKeys = (listed.Contents ?? []).map((object) => object.Key!).filter((key) => key.startsWith('crl/'));
  t.equal(crlKeys.length, PAYLOAD_VERSIONS.length, `published: ${crlKeys.join(', ')}`);
  for (const key of crlKeys) {
    const caId = key.slice('crl/'.length, -'.crl'.length);
    const fetch = async (objectKey: string) => {
      const object = await objectStorage.client.send(new GetObjectCommand({ Bucket: 'pca-crls', Key: objectKey }));
      return { contentType: object.ContentType, body: await object.Body!.transformToByteArray() };
    };
    const [crl, certificate] = await Promise.all([fetch(key), fetch(`ca/${caId}.crt`)]);
    t.same([crl.contentType, certificate.contentType], ['application/pkix-crl', 'application/pkix-cert']);
    const crlFile = path.join(work, `${caId}.crl`);
    const caFile = path.join(work, `${caId}.pem`);
    await writeFile(crlFile, crl.body);
    await writeFile(path.join(work, `${caId}.crt`), certificate.body);
    await run('openssl', ['x509', '-inform', 'DER', '-in', path.join(work, `${caId}.crt`), '-out', caFile]);
    const verdict = await run('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', caFile, '-noout', '-verify']);
    t.match(verdict.stderr + verdict.stdout, /verify OK/, `openssl verifies ${key} against the published CA certificate`);
  }
});

t.test(`the jobs handler from the zip runs a job on Node ${NODE_VERSION}`, async (t) => {
  const jobs = startFunction('jobs');
  t.teardown(jobs.stop);
  const result = await jobs.invoke({ job: 'crl-refresh' });
  t.type(result, 'object', `crl-refresh: ${JSON.stringify(result)}`);
  await t.rejects(jobs.invoke({}), /must name a job/);
});
