/**
 * serverless.yml declares one scheduled function for every job the app runs, and handlers that exist; `osls package`
 * (offline, in a copy of the service folder) takes secrets by reference only and grants reading exactly those.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EMBEDDED_MAINTENANCE_JOB } from '../../src/jobs/embedded-maintenance.ts';
import t from 'tap';
import { parse } from 'yaml';
import { createTestApp } from '../helpers/app.ts';

interface ServerlessFunction {
  handler: string;
  events?: { schedule?: { rate: string; input?: { job?: string } }; httpApi?: unknown }[];
}
const manifest = parse(readFileSync('serverless.yml', 'utf8')) as { functions: Record<string, ServerlessFunction> };

t.test('every job has exactly one scheduled function, and nothing else is scheduled', async (t) => {
  const harness = await createTestApp();
  t.teardown(() => harness.close());
  const scheduled = Object.values(manifest.functions)
    .flatMap((fn) => fn.events ?? [])
    .flatMap((event) => (event.schedule ? [event.schedule.input?.job] : []));
  // Lambda runs on Postgres (autovacuum): the embedded database's maintenance is the plain server's alone.
  const lambdaJobs = harness.app.jobRunner.jobs.filter((job) => job.name !== EMBEDDED_MAINTENANCE_JOB);
  const jobs = lambdaJobs.map((job) => job.name);
  t.ok(jobs.length > 0, 'the app has jobs');
  t.same([...scheduled].sort(), [...jobs].sort());
  // The server's timers run each job as often as the Lambda schedule does.
  const seconds = { minute: 60, minutes: 60, hour: 3600, hours: 3600 } as Record<string, number>;
  const rates = Object.fromEntries(
    Object.values(manifest.functions)
      .flatMap((fn) => fn.events ?? [])
      .flatMap((event) => (event.schedule ? [event.schedule] : []))
      .map(({ rate, input }) => {
        const [, count, unit] = /^rate\((\d+) (\w+)\)$/.exec(rate)!;
        return [input!.job!, Number(count) * seconds[unit!]!];
      }),
  );
  t.same(Object.fromEntries(lambdaJobs.map((job) => [job.name, job.intervalSeconds])), rates, 'same intervals');
});

// Importing an entry builds its deployment at init, so the source is read here; the packaged-bundle test imports them.
t.test('every handler named in serverless.yml is exported by an entry module in src/lambda/', async (t) => {
  for (const [name, fn] of Object.entries(manifest.functions)) {
    const [file, exported] = fn.handler.split(/\.(?=[^.]+$)/) as [string, string];
    const entry = /^dist\/lambda\/(http|jobs|migrate)$/.exec(file)?.[1];
    t.ok(entry, `${name} uses a bundled entry module (${file})`);
    const source = readFileSync(`src/lambda/${entry}.ts`, 'utf8');
    t.match(source, new RegExp(`^export (const|async function) ${exported}\\b`, 'm'), `${name}: ${exported} is exported`);
  }
});

t.test(
  'osls package: secrets by reference, no secret value anywhere in .serverless/, read access to exactly those; CRL publishing to its bucket',
  async (t) => {
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const work = await mkdtemp(path.join(os.tmpdir(), 'pca-osls-'));
    t.teardown(() => rm(work, { recursive: true, force: true }));
    await copyFile(path.join(repo, 'serverless.yml'), path.join(work, 'serverless.yml'));
    await mkdir(path.join(work, 'dist/lambda'), { recursive: true });
    await writeFile(path.join(work, 'dist/lambda/http.mjs'), 'export const handler = () => undefined;\n');

    const jwt = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = jwt.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    // The values, as an operator's shell may hold them: none may reach the package.
    const secrets = {
      MASTER_KEY: randomBytes(32).toString('base64'),
      JWT_PRIVATE_KEY: jwt.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      DATABASE_URL: `postgres://pca:${randomBytes(12).toString('hex')}@db.corp.internal/pca`,
    };
    const arn = (name: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${name}-AbCdEf`;
    const references = {
      databaseUrlSecretArn: arn('pca-database-url'),
      masterKeySecretArn: arn('pca-master-key'),
      jwtPrivateKeySecretArn: arn('pca-jwt-private-key'),
    };
    const params = Object.entries({
      publicBaseUrl: 'https://pca.corp.internal',
      jwtPublicKey: publicKey,
      crlBucket: 'pca-crls',
      crlPublicBaseUrl: 'https://crl.corp.internal',
      otherMasterKeysSecretArn: arn('pca-other-master-keys'),
      ...references,
    }).map(([name, value]) => `--param=${name}=${value}`);
    await promisify(execFile)(path.join(repo, 'node_modules/.bin/osls'), ['package', ...params], {
      cwd: work,
      env: { PATH: process.env.PATH, HOME: work, ...secrets },
      maxBuffer: 16 * 1024 * 1024,
    });

    const output = path.join(work, '.serverless');
    const files = await readdir(output);
    t.ok(files.includes('serverless-state.json') && files.includes('cloudformation-template-update-stack.json'), files.join(', '));
    await promisify(execFile)('unzip', ['-q', path.join(output, 'private-ca-service.zip'), '-d', path.join(work, 'unzipped')]);
    const everything = (await readdir(work, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
    for (const entry of everything) {
      const text = await readFile(path.join(entry.parentPath, entry.name), 'latin1');
      for (const [name, value] of Object.entries(secrets)) {
        // The PEM's base64 body is what would leak, whatever line breaks or escaping a file gives it.
        const needle = name === 'JWT_PRIVATE_KEY' ? value.split('\n')[1]! : value;
        t.notOk(text.includes(needle), `${name} is not in ${path.relative(work, path.join(entry.parentPath, entry.name))}`);
      }
    }

    const template = JSON.parse(await readFile(path.join(output, 'cloudformation-template-update-stack.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
    };
    const functions = Object.values(template.Resources).filter((resource) => resource.Type === 'AWS::Lambda::Function');
    t.equal(functions.length, Object.keys(manifest.functions).length);
    for (const fn of functions) {
      const variables = fn.Properties.Environment.Variables as Record<string, string>;
      t.same(
        [variables.DATABASE_URL_SECRET_ARN, variables.MASTER_KEY_SECRET_ARN, variables.JWT_PRIVATE_KEY_SECRET_ARN],
        [references.databaseUrlSecretArn, references.masterKeySecretArn, references.jwtPrivateKeySecretArn],
        `${String(fn.Properties.Handler)} reads its secrets by reference`,
      );
      for (const plain of ['DATABASE_URL', 'MASTER_KEY', 'JWT_PRIVATE_KEY']) t.notOk(plain in variables, `no ${plain} variable`);
    }
    const statements = Object.values(template.Resources)
      .filter((resource) => resource.Type === 'AWS::IAM::Role')
      .flatMap((role) => role.Properties.Policies.flatMap((policy: any) => policy.PolicyDocument.Statement)) as {
      Action: string[];
      Resource: unknown[];
    }[];
    const secretStatements = statements.filter((statement) => statement.Action.some((action) => action.startsWith('secretsmanager:')));
    t.same(
      secretStatements.map((statement) => statement.Action),
      [['secretsmanager:GetSecretValue']],
      'reading secrets, and nothing else',
    );
    t.same([...secretStatements[0]!.Resource].sort(), Object.values(references).sort(), 'on exactly the three secrets (no wildcard)');

    const publishing = template.Resources.CrlPublishingPolicy!;
    t.equal(publishing.Properties.Roles[0].Ref, 'IamRoleLambdaExecution');
    t.same(
      publishing.Properties.PolicyDocument.Statement,
      [{ Effect: 'Allow', Action: 's3:PutObject', Resource: ['arn:aws:s3:::pca-crls/crl/*', 'arn:aws:s3:::pca-crls/ca/*'] }],
      'CRL publishing writes two prefixes of its bucket',
    );
    t.equal(functions[0]!.Properties.Environment.Variables.CRL_PUBLISH_BUCKETS, 'pca-crls');

    // A rotation in progress: every function opens keys sealed under the other master keys, read by reference too.
    t.ok(
      functions.every((fn) => fn.Properties.Environment.Variables.OTHER_MASTER_KEYS_SECRET_ARN === arn('pca-other-master-keys')),
      'every function names the other master keys by reference',
    );
    const rotation = template.Resources.MasterKeyRotationPolicy!;
    t.equal(rotation.Properties.Roles[0].Ref, 'IamRoleLambdaExecution');
    t.same(
      rotation.Properties.PolicyDocument.Statement,
      [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: arn('pca-other-master-keys') }],
      'read access to that secret alone',
    );
  },
);
