/**
 * Clients generated from the committed OpenAPI document, as a new user would make them: @hey-api/openapi-ts (fetch
 * client and SDK) and orval (axios functions). Both type-check under `strict`, then drive a started server through
 * the same scenario, binary routes included: a CA hierarchy, a certificate from an openssl CSR, the list, the CA
 * certificates in DER (openssl x509/verify), the zip export (unzip, then openssl verify), the CRL (openssl crl) and an
 * OCSP request made by openssl and sent through the client (openssl ocsp -respin).
 */
import { execFile } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { KEY_ARGS, opensslCsr, openssl, pemBlocks, scratch, verifyStrict, type Scratch } from '../certificates/support.ts';
import { createTestApp } from '../helpers/app.ts';

const run = promisify(execFile);
const DOCUMENT = path.resolve('openapi/openapi.yaml');

const missing: string[] = [];
for (const tool of ['openssl', 'unzip']) {
  if (
    !(await run('sh', ['-c', `command -v ${tool}`]).then(
      () => true,
      () => false,
    ))
  )
    missing.push(tool);
}
// The scenarios need both tools to judge their results; generating and type-checking need neither.
const skip = missing.length > 0 ? `${missing.join(' and ')} not installed (apt-get install ${missing.join(' ')})` : false;
if (skip) t.comment(`scenarios skipped: ${skip}`);

/** What the scenario needs from a client; each generated client is adapted to it in a few lines. */
interface Driver {
  createCa(body: Record<string, unknown>): Promise<string>;
  issueFromCsr(issuerId: string, csr: string): Promise<string>;
  listCertificates(): Promise<{ total: number; certificates: { certificate_id: string; status: string }[] }>;
  caCertificate(caId: string): Promise<Blob>;
  exportZip(certificateId: string): Promise<Blob>;
  crl(caId: string): Promise<Blob>;
  ocsp(caId: string, request: Uint8Array): Promise<Blob>;
}

const out = await scratch('generated-clients');
const root = out.file('clients');
await mkdir(root);
// The generated code imports its runtime dependencies (axios) like an application would.
await symlink(path.resolve('node_modules'), path.join(root, 'node_modules'), 'dir');

t.test('both generators accept the committed document and their output type-checks strictly', async (t) => {
  const { createClient } = await import('@hey-api/openapi-ts');
  await createClient({
    input: DOCUMENT,
    output: { path: path.join(root, 'hey') },
    plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
    logs: { level: 'silent' },
  });
  // orval's axios functions through a custom instance (orval's mutator), as its documentation suggests for a base URL
  // and credentials; the instance uses axios's fetch adapter, which reads Blob bodies in Node.
  await mkdir(path.join(root, 'orval'));
  await writeFile(
    path.join(root, 'orval', 'instance.ts'),
    [
      "import axios, { type AxiosRequestConfig } from 'axios';",
      "export const instance = axios.create({ adapter: 'fetch' });",
      'export const call = <T>(config: AxiosRequestConfig, options?: AxiosRequestConfig): Promise<T> =>',
      '  instance.request({ ...config, ...options }).then((response) => response.data as T);',
      '',
    ].join('\n'),
  );
  const { generate } = await import('orval');
  await generate({
    input: { target: DOCUMENT },
    output: {
      target: path.join(root, 'orval', 'api.ts'),
      client: 'axios-functions',
      mode: 'single',
      override: { mutator: { path: path.join(root, 'orval', 'instance.ts'), name: 'call' } },
    },
  });

  await writeFile(
    path.join(root, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        types: [],
        skipLibCheck: true,
        noImplicitReturns: true,
        noFallthroughCasesInSwitch: true,
      },
      include: ['hey/**/*.ts', 'orval/**/*.ts'],
    }),
  );
  const checked = await run(path.resolve('node_modules/.bin/tsc'), ['-p', path.join(root, 'tsconfig.json')]).then(
    () => ({ ok: true, output: '' }),
    (error: { stdout: string; stderr: string }) => ({ ok: false, output: `${error.stdout}${error.stderr}` }),
  );
  t.ok(checked.ok, `tsc --strict over the generated clients: ${checked.output.slice(0, 3000)}`);
});

const harness = await createTestApp();
t.teardown(() => harness.close());
const baseUrl = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const token = harness.token();

const dn = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'huawei-cloud', organizational_unit: 'container' };
const fail = (what: string, result: unknown): never => {
  throw new Error(`${what}: ${JSON.stringify(result)}`);
};

/** The same scenario through any client; openssl and unzip judge what comes back. */
async function scenario(t: Test, name: string, client: Driver, dir: Scratch): Promise<void> {
  const rootId = await client.createCa({
    type: 'ROOT',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { ...dn, common_name: `${name}-root` },
    validity: { type: 'YEAR', value: 2 },
    crl_configuration: { enabled: true, valid_days: 7 },
  });
  const subId = await client.createCa({
    type: 'SUBORDINATE',
    issuer_id: rootId,
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    path_length: 0,
    distinguished_name: { ...dn, common_name: `${name}-sub` },
    validity: { type: 'YEAR', value: 1 },
    crl_configuration: { enabled: true, valid_days: 7 },
  });

  const { csr } = await opensslCsr(
    dir,
    `${name}-leaf`,
    [...KEY_ARGS.p256],
    ['-subj', `/CN=${name}-leaf`, '-addext', `subjectAltName=DNS:${name}.example.com`],
  );
  const certificateId = await client.issueFromCsr(subId, csr);

  const listed = await client.listCertificates();
  t.ok(
    listed.certificates.some((c) => c.certificate_id === certificateId && c.status === 'ISSUED'),
    'the list shows the issued certificate',
  );

  // The CA certificates as the AIA URL serves them: DER, which openssl reads as such and verifies.
  const derToPem = async (blob: Blob, file: string): Promise<string> => {
    const derFile = await dir.write(`${file}.der`, new Uint8Array(await blob.arrayBuffer()));
    const converted = await openssl(['x509', '-inform', 'DER', '-in', derFile, '-out', dir.file(`${file}.pem`)]);
    t.ok(converted.ok, `${file}: openssl x509 -inform DER reads it ${converted.stderr}`);
    return (await dir.read(`${file}.pem`)).toString('utf8');
  };
  const rootPem = await derToPem(await client.caCertificate(rootId), `${name}-root`);
  const subPem = await derToPem(await client.caCertificate(subId), `${name}-sub`);
  t.match((await openssl(['x509', '-in', dir.file(`${name}-sub.pem`), '-noout', '-subject'])).stdout, `CN = ${name}-sub`);
  const subVerified = await verifyStrict(dir, subPem, rootPem);
  t.ok(subVerified.ok, `the subordinate verifies against the root ${subVerified.stderr}`);

  // The zip form of the export: NGINX's layout is one server.crt with the full chain.
  const zipFile = await dir.write(`${name}.zip`, new Uint8Array(await (await client.exportZip(certificateId)).arrayBuffer()));
  const { stdout: listing } = await run('unzip', ['-l', zipFile]);
  t.match(listing, /server\.crt/, 'unzip lists server.crt');
  const { stdout: fullChain } = await run('unzip', ['-p', zipFile, 'server.crt']);
  const [leafPem, ...chain] = pemBlocks(fullChain);
  t.equal(chain.length, 2, 'leaf, issuing CA, root');
  const leafVerified = await verifyStrict(dir, leafPem!, rootPem, [subPem]);
  t.ok(leafVerified.ok, `the exported leaf verifies up to the root ${leafVerified.stderr}`);
  const leafFile = await dir.write(`${name}-leaf.pem`, leafPem!);

  const crlFile = await dir.write(`${name}-sub.crl`, new Uint8Array(await (await client.crl(subId)).arrayBuffer()));
  const crl = await openssl(['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', dir.file(`${name}-sub.pem`), '-noout']);
  t.ok(crl.ok && /verify OK/.test(crl.stdout + crl.stderr), `openssl crl verifies the CRL with the issuing CA: ${crl.stdout}${crl.stderr}`);

  const requestFile = dir.file(`${name}-ocsp-req.der`);
  const built = await openssl(['ocsp', '-issuer', dir.file(`${name}-sub.pem`), '-cert', leafFile, '-no_nonce', '-reqout', requestFile]);
  t.ok(built.ok, built.stderr);
  const responseFile = await dir.write(
    `${name}-ocsp-resp.der`,
    new Uint8Array(await (await client.ocsp(subId, await dir.read(`${name}-ocsp-req.der`))).arrayBuffer()),
  );
  const chainFile = await dir.write(`${name}-chain.pem`, `${rootPem}\n${subPem}`);
  const status = await openssl([
    'ocsp',
    '-respin',
    responseFile,
    '-issuer',
    dir.file(`${name}-sub.pem`),
    '-CAfile',
    chainFile,
    '-cert',
    leafFile,
    '-no_nonce',
  ]);
  t.match(status.stdout + status.stderr, /Response verify OK/, 'openssl verifies the OCSP response');
  t.match(status.stdout, new RegExp(`${name}-leaf\\.pem: good`), 'and reads the leaf as good');
}

t.test('@hey-api/openapi-ts: the fetch client, configured for the Bearer scheme only, runs the scenario', { skip }, async (t) => {
  type Result = { data?: unknown; error?: unknown; request: Request; response: Response };
  type Call = (options: Record<string, unknown>) => Promise<Result>;
  const heyDir = path.join(root, 'hey');
  const { client } = (await import(pathToFileURL(path.join(heyDir, 'client.gen.ts')).href)) as {
    client: { setConfig(config: Record<string, unknown>): void };
  };
  const sdk = (await import(pathToFileURL(path.join(heyDir, 'sdk.gen.ts')).href)) as Record<string, Call>;
  // The auth callback is asked once per scheme the operation lists: answering for `bearer` alone sends one credential.
  client.setConfig({ baseUrl, auth: (auth: { scheme?: string }) => (auth.scheme === 'bearer' ? token : undefined) });
  const call = async (operation: string, options: Record<string, unknown>): Promise<Result> => {
    const result = await sdk[operation]!(options);
    return result.response.ok ? result : fail(`${operation} answered ${result.response.status}`, result.error);
  };
  const data = async <T>(operation: string, options: Record<string, unknown>) => (await call(operation, options)).data as T;

  const first = await call('listCertificateAuthority', { query: { limit: 1 } });
  t.match(first.request.headers.get('authorization'), /^Bearer /, 'the Bearer scheme is sent');
  t.equal(first.request.headers.get('x-auth-token'), null, 'and no X-Auth-Token beside it');
  t.ok(first.response.headers.get('x-request-id'), 'responses carry X-Request-Id, as documented');

  await scenario(
    t,
    'hey',
    {
      createCa: async (body) => (await data<{ ca_id: string }>('createCertificateAuthority', { body })).ca_id,
      issueFromCsr: async (issuerId, csr) =>
        (
          await data<{ certificate_id: string }>('createCertificateByCsr', {
            body: { issuer_id: issuerId, csr, validity: { type: 'DAY', value: 30 } },
          })
        ).certificate_id,
      listCertificates: () => data('listCertificate', { query: { limit: 100 } }),
      caCertificate: (caId) => data('getPublicCaCertificate', { path: { file: `${caId}.crt` } }),
      exportZip: (id) => data('exportCertificate', { path: { certificate_id: id }, body: { is_compressed: 'true', type: 'NGINX' } }),
      crl: (caId) => data('getPublicCrl', { path: { crl_file: `${caId}.crl` } }),
      ocsp: (caId, request) => data('postOcspRequest', { path: { ca_id: caId }, body: new Blob([request.slice()]) }),
    },
    await scratch('hey-scenario'),
  );

  // The X-Auth-Token scheme configured alone works the same way.
  client.setConfig({ auth: (auth: { name?: string }) => (auth.name === 'X-Auth-Token' ? token : undefined) });
  const viaHeader = await call('listCertificateAuthority', { query: { limit: 1 } });
  t.equal(viaHeader.request.headers.get('authorization'), null, 'X-Auth-Token alone');
  t.equal(viaHeader.response.status, 200);
});

t.test('orval: the axios functions, through an instance sending the Bearer token, run the scenario', { skip }, async (t) => {
  type Fn = (...args: unknown[]) => Promise<unknown>;
  const api = (await import(pathToFileURL(path.join(root, 'orval', 'api.ts')).href)) as Record<string, Fn>;
  const { instance } = (await import(pathToFileURL(path.join(root, 'orval', 'instance.ts')).href)) as {
    instance: { defaults: { baseURL?: string; headers: { common: Record<string, string> } } };
  };
  instance.defaults.baseURL = baseUrl;
  instance.defaults.headers.common.Authorization = `Bearer ${token}`;
  const data = async <T>(operation: string, ...args: unknown[]) => (await api[operation]!(...args)) as T;

  await scenario(
    t,
    'orval',
    {
      createCa: async (body) => (await data<{ ca_id: string }>('createCertificateAuthority', body)).ca_id,
      issueFromCsr: async (issuerId, csr) =>
        (
          await data<{ certificate_id: string }>('createCertificateByCsr', {
            issuer_id: issuerId,
            csr,
            validity: { type: 'DAY', value: 30 },
          })
        ).certificate_id,
      listCertificates: () => data('listCertificate', { limit: 100 }),
      caCertificate: (caId) => data('getPublicCaCertificate', `${caId}.crt`),
      // The operation answers JSON or a zip depending on is_compressed, so the caller says which it asked for.
      exportZip: (id) => data('exportCertificate', id, { is_compressed: 'true', type: 'NGINX' }, { responseType: 'blob' }),
      crl: (caId) => data('getPublicCrl', `${caId}.crl`),
      ocsp: (caId, request) => data('postOcspRequest', caId, new Blob([request.slice()])),
    },
    await scratch('orval-scenario'),
  );
});
