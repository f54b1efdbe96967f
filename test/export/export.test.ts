/**
 * Export encoders judged by outside tools: openssl for PEM keys and PKCS#12, keytool for JKS, unzip for zips.
 * Fixtures: an EC P-384 root, an RSA intermediate (also the ISTIO subject) and RSA and EC P-256 leaves whose
 * keys come from WebCrypto, as the service's keys do.
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { webcrypto } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppError } from '../../src/errors.ts';
import { buildCertificateExport, type CertificateExportInput } from '../../src/export/export-bundle.ts';
import { buildJks } from '../../src/export/jks.ts';
import { buildPkcs12 } from '../../src/export/pkcs12.ts';
import { contentOf, encodingOf, readChildren, readSingle } from '../../src/x509/der-reader.ts';
import { mainThreadCpuAvailable, mainThreadCpuMs } from '../helpers/main-thread-cpu.ts';
import { encryptPkcs8Pem, pkcs8ToTraditionalPem, validateExportPassword } from '../../src/export/private-key-formats.ts';
import { zipFiles } from '../../src/export/zip.ts';

const execFileAsync = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'export-test-'));
let fileCounter = 0;

async function run(command: string, args: string[]): Promise<string> {
  return (await execFileAsync(command, args, { cwd: dir, maxBuffer: 1 << 24 })).stdout;
}

async function runBinary(command: string, args: string[]): Promise<Buffer> {
  return (await execFileAsync(command, args, { cwd: dir, encoding: 'buffer', maxBuffer: 1 << 24 })).stdout;
}

async function tempFile(content: Uint8Array | string, extension = 'bin'): Promise<string> {
  const path = join(dir, `f${++fileCounter}.${extension}`);
  await writeFile(path, content);
  return path;
}

const pemOf = (der: Uint8Array, label: string) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;

async function webCryptoPkcs8(algorithm: RsaHashedKeyGenParams | EcKeyGenParams): Promise<Uint8Array> {
  const usages: KeyUsage[] = ['sign', 'verify'];
  const pair = (await webcrypto.subtle.generateKey(algorithm, true, usages)) as CryptoKeyPair;
  return new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey));
}

const rsa2048 = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
const ecCurve = (namedCurve: string) => ({ name: 'ECDSA', namedCurve });

/** Public key (SPKI PEM) as openssl derives it from any private-key file or a certificate. */
async function publicKeyOfKeyFile(path: string, extra: string[] = []): Promise<string> {
  return run('openssl', ['pkey', '-in', path, '-pubout', ...extra]);
}
async function publicKeyOfPkcs8(pkcs8: Uint8Array): Promise<string> {
  return publicKeyOfKeyFile(await tempFile(pemOf(pkcs8, 'PRIVATE KEY'), 'pem'));
}
async function publicKeyOfCertificate(der: Uint8Array): Promise<string> {
  return run('openssl', ['x509', '-in', await tempFile(pemOf(der, 'CERTIFICATE'), 'pem'), '-noout', '-pubkey']);
}

async function derOfCertificateFile(path: string): Promise<Uint8Array> {
  return new Uint8Array(await runBinary('openssl', ['x509', '-in', path, '-outform', 'DER']));
}

async function issue(subject: string, key: string, issuer: { cert: string; key: string } | undefined, extensions: string) {
  const ext = await tempFile(`[v3]\n${extensions}\n`, 'cnf');
  const out = join(dir, `f${++fileCounter}.pem`);
  if (issuer === undefined) {
    await run('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-subj',
      subject,
      '-days',
      '30',
      '-config',
      ext,
      '-extensions',
      'v3',
      '-out',
      out,
    ]);
  } else {
    const csr = join(dir, `f${++fileCounter}.csr`);
    await run('openssl', ['req', '-new', '-key', key, '-subj', subject, '-out', csr, '-config', ext]);
    await run('openssl', [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      issuer.cert,
      '-CAkey',
      issuer.key,
      '-days',
      '30',
      '-extfile',
      ext,
      '-extensions',
      'v3',
      '-out',
      out,
    ]);
  }
  return out;
}

const caExtensions = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash';
const leafExtensions = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=DNS:www.example.com';

const rootKey = await tempFile(pemOf(await webCryptoPkcs8(ecCurve('P-384')), 'PRIVATE KEY'), 'pem');
const rootPath = await issue('/CN=Export Test Root', rootKey, undefined, caExtensions);
const intermediatePkcs8 = await webCryptoPkcs8(rsa2048);
const intermediateKey = await tempFile(pemOf(intermediatePkcs8, 'PRIVATE KEY'), 'pem');
const intermediatePath = await issue('/CN=Export Test Intermediate', intermediateKey, { cert: rootPath, key: rootKey }, caExtensions);
const rsaLeafPkcs8 = await webCryptoPkcs8(rsa2048);
const ecLeafPkcs8 = await webCryptoPkcs8(ecCurve('P-256'));
const intermediateIssuer = { cert: intermediatePath, key: intermediateKey };
const rsaLeafPath = await issue(
  '/CN=www.example.com',
  await tempFile(pemOf(rsaLeafPkcs8, 'PRIVATE KEY'), 'pem'),
  intermediateIssuer,
  leafExtensions,
);
const ecLeafPath = await issue(
  '/CN=www.example.com',
  await tempFile(pemOf(ecLeafPkcs8, 'PRIVATE KEY'), 'pem'),
  intermediateIssuer,
  leafExtensions,
);

const root = await derOfCertificateFile(rootPath);
const intermediate = await derOfCertificateFile(intermediatePath);
const rsaLeaf = await derOfCertificateFile(rsaLeafPath);
const ecLeaf = await derOfCertificateFile(ecLeafPath);
const leafChain = [intermediate, root];

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----\r\n([\s\S]*?)\r\n-----END \1-----/g;

/** The contract's PEM layout: CRLF only, full 64-character lines, and a final break only where asked. */
function assertPemLayout(t: Test, text: string, label: string, blocks: number, endsWithBreak: boolean) {
  t.notOk(text.replace(/\r\n/g, '').includes('\n'), 'only CRLF line breaks');
  t.equal(text.endsWith('\r\n'), endsWithBreak, endsWithBreak ? 'ends with CRLF' : 'no break after END');
  const found = [...text.matchAll(PEM_BLOCK)];
  t.equal(found.length, blocks, `${blocks} PEM block(s)`);
  t.equal(found.map((m) => m[0]).join('\r\n') + (endsWithBreak ? '\r\n' : ''), text, 'blocks joined by CRLF, nothing else');
  for (const [, foundLabel, body] of found) {
    t.equal(foundLabel, label);
    const lines = body.split('\r\n');
    t.ok(lines.slice(0, -1).every((line) => line.length === 64) && lines.at(-1)!.length <= 64, '64-character lines');
  }
}

const pemBlocks = (text: string) => [...text.matchAll(PEM_BLOCK)].map((m) => new Uint8Array(Buffer.from(m[2], 'base64')));

async function assertInvalidParameter(t: Test, action: () => unknown, pattern: RegExp) {
  await t.rejects(async () => action(), { statusCode: 400, code: 'PCA.00020001', message: pattern });
  await t.rejects(async () => action(), AppError);
}

t.test('export passwords: letters, digits and symbols, 8 to 32 bytes', async (t) => {
  for (const good of ['Abc,.+-_#123', 'x'.repeat(32), '!"$%&\'()*/:;<=>?@[\\]^`{|}~']) {
    t.doesNotThrow(() => validateExportPassword(good), good);
  }
  await assertInvalidParameter(t, () => validateExportPassword('x'.repeat(33)), /32 bytes/);
  await assertInvalidParameter(t, () => validateExportPassword(''), /32 bytes/);
  await assertInvalidParameter(t, () => validateExportPassword('Seven#7'), /8 to 32 bytes/);
  for (const bad of ['pass word', 'pässword', 'tab\there!', 'new\nline!', 'nul\0nul\0']) {
    await assertInvalidParameter(t, () => validateExportPassword(bad), /letters, digits and symbols/);
  }
});

t.test('traditional PEM keys: PKCS#1 for RSA, SEC 1 with named curve and public key for EC', async (t) => {
  const cases = [
    { name: 'RSA', pkcs8: rsaLeafPkcs8, label: 'RSA PRIVATE KEY', curve: undefined },
    { name: 'P-256', pkcs8: ecLeafPkcs8, label: 'EC PRIVATE KEY', curve: 'prime256v1' },
    { name: 'P-384', pkcs8: await webCryptoPkcs8(ecCurve('P-384')), label: 'EC PRIVATE KEY', curve: 'secp384r1' },
    { name: 'P-521', pkcs8: await webCryptoPkcs8(ecCurve('P-521')), label: 'EC PRIVATE KEY', curve: 'secp521r1' },
  ];
  for (const { name, pkcs8, label, curve } of cases) {
    const pem = pkcs8ToTraditionalPem(pkcs8);
    assertPemLayout(t, pem, label, 1, true);
    const path = await tempFile(pem, 'pem');
    t.equal(await publicKeyOfKeyFile(path), await publicKeyOfPkcs8(pkcs8), `${name}: openssl reads the key, same public key`);
    const structure = await run('openssl', ['asn1parse', '-in', path]);
    if (curve === undefined) {
      t.notMatch(structure, /OBJECT/, 'PKCS#1 carries no algorithm identifier');
    } else {
      t.match(structure, new RegExp(`cont \\[ 0 \\][\\s\\S]*OBJECT\\s+:${curve}`), `${name}: named curve parameters`);
      t.match(structure, /cont \[ 1 \][\s\S]*BIT STRING/, `${name}: public key`);
    }
  }
});

t.test('encrypted PKCS#8: PBES2, PBKDF2-HMAC-SHA256 with 100000 rounds, AES-256-CBC', async (t) => {
  for (const pkcs8 of [rsaLeafPkcs8, ecLeafPkcs8]) {
    const pem = await encryptPkcs8Pem(pkcs8, 'S3cret,.+-_#');
    assertPemLayout(t, pem, 'ENCRYPTED PRIVATE KEY', 1, true);
    const path = await tempFile(pem, 'pem');
    t.equal(await publicKeyOfKeyFile(path, ['-passin', 'pass:S3cret,.+-_#']), await publicKeyOfPkcs8(pkcs8));
    await t.rejects(publicKeyOfKeyFile(path, ['-passin', 'pass:wrong']), 'a wrong password fails');
    const structure = await run('openssl', ['asn1parse', '-in', path]);
    for (const part of [/:PBES2/, /:PBKDF2/, /:hmacWithSHA256/, /:aes-256-cbc/, /INTEGER\s+:0186A0/]) t.match(structure, part);
  }
  t.not(await encryptPkcs8Pem(ecLeafPkcs8, 'p'), await encryptPkcs8Pem(ecLeafPkcs8, 'p'), 'fresh salt and IV each time');
});

/** `openssl pkcs12` output of a PFX: the info dump and the key and certificates it holds. */
async function openPkcs12(bytes: Uint8Array, password: string) {
  const path = await tempFile(bytes, 'p12');
  const info = (await execFileAsync('openssl', ['pkcs12', '-in', path, '-info', '-noout', '-passin', `pass:${password}`], { cwd: dir }))
    .stderr;
  const contents = await run('openssl', ['pkcs12', '-in', path, '-nodes', '-passin', `pass:${password}`]);
  const leafOnly = await run('openssl', ['pkcs12', '-in', path, '-nokeys', '-clcerts', '-passin', `pass:${password}`]);
  return { path, info, contents, leafOnly };
}

t.test('PKCS#12: openssl and keytool read key, leaf and chain', async (t) => {
  const pfx = await buildPkcs12({
    pkcs8: ecLeafPkcs8,
    certificate: ecLeaf,
    chain: leafChain,
    password: 'pfx-Pass#1',
    friendlyName: 'www.example.com',
  });
  const { path, info, contents, leafOnly } = await openPkcs12(pfx, 'pfx-Pass#1');
  t.match(info, /MAC: sha256, Iteration 100000/);
  t.match(info, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256/);
  t.match(info, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 100000, PRF hmacWithSHA256/);
  t.equal(contents.match(/BEGIN CERTIFICATE/g)?.length, 3, 'three certificates');
  t.equal(await publicKeyOfKeyFile(await tempFile(contents, 'pem')), await publicKeyOfPkcs8(ecLeafPkcs8), 'the key');
  t.match(leafOnly, /friendlyName: www.example.com/);
  t.same(pemBlocks(leafOnly.replace(/\n/g, '\r\n')), [ecLeaf], 'localKeyID pairs the key with the leaf');
  await t.rejects(execFileAsync('openssl', ['pkcs12', '-in', path, '-info', '-noout', '-passin', 'pass:wrong']), 'MAC fails');
  const listing = await run('keytool', ['-list', '-v', '-storetype', 'PKCS12', '-keystore', path, '-storepass', 'pfx-Pass#1']);
  t.match(listing, /Alias name: www.example.com/);
  t.match(listing, /Entry type: PrivateKeyEntry/);
  t.match(listing, /Certificate chain length: 3/);
});

t.test("PKCS#12: a bag's attributes are a DER SET OF, sorted by their encodings", async (t) => {
  // A short name encodes friendlyName shorter than localKeyId, so the order written (localKeyId first) is not DER's.
  for (const friendlyName of ['a.example', 'a-much-longer-name.example.com']) {
    const pfx = await buildPkcs12({ pkcs8: ecLeafPkcs8, certificate: ecLeaf, chain: [], password: 'pfx-Pass#1', friendlyName });
    // PFX → authSafe ContentInfo → [0] OCTET STRING → AuthenticatedSafe; its second ContentInfo (data) holds the key bag.
    const [, authSafe] = readChildren(readSingle(pfx));
    const authenticatedSafe = readChildren(readSingle(contentOf(readChildren(readChildren(authSafe!)[1]!)[0]!)));
    const keyBags = readSingle(contentOf(readChildren(readChildren(authenticatedSafe[1]!)[1]!)[0]!));
    const [keyBag] = readChildren(keyBags);
    const attributes = readChildren(readChildren(keyBag!)[2]!).map((attribute) => Buffer.from(encodingOf(attribute)));
    t.equal(attributes.length, 2, `${friendlyName}: localKeyId and friendlyName`);
    t.same(attributes, [...attributes].sort(Buffer.compare), `${friendlyName}: in DER order`);
  }
});

t.test('JKS: keytool lists the entry and converts it to a PKCS#12 with the same key', async (t) => {
  const jks = buildJks({ alias: 'server', pkcs8: rsaLeafPkcs8, chain: [rsaLeaf, ...leafChain], password: 'jks-Pass#1' });
  t.same([...jks.subarray(0, 8)], [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2], 'magic and version 2');
  const path = await tempFile(jks, 'jks');
  const listing = await run('keytool', ['-list', '-v', '-keystore', path, '-storepass', 'jks-Pass#1']);
  t.match(listing, /Keystore type: JKS/i);
  t.match(listing, /Alias name: server/);
  t.match(listing, /Entry type: PrivateKeyEntry/);
  t.match(listing, /Certificate chain length: 3/);
  t.match(listing, /Owner: CN=www.example.com[\s\S]*Owner: CN=Export Test Intermediate[\s\S]*Owner: CN=Export Test Root/);
  await t.rejects(run('keytool', ['-list', '-keystore', path, '-storepass', 'wrong-pass']), 'integrity check fails');
  const p12 = join(dir, 'converted.p12');
  await run('keytool', [
    '-importkeystore',
    '-noprompt',
    '-srckeystore',
    path,
    '-srcstorepass',
    'jks-Pass#1',
    '-srcalias',
    'server',
    '-destkeystore',
    p12,
    '-deststoretype',
    'PKCS12',
    '-deststorepass',
    'other-pass',
  ]);
  const keyPem = await run('openssl', ['pkcs12', '-in', p12, '-nocerts', '-nodes', '-passin', 'pass:other-pass']);
  t.equal(await publicKeyOfKeyFile(await tempFile(keyPem, 'pem')), await publicKeyOfPkcs8(rsaLeafPkcs8), 'key survives');
});

/** Names in the archive, in order, as unzip lists them, and each file's bytes. */
async function unzip(bytes: Uint8Array) {
  const path = await tempFile(bytes, 'zip');
  const names = (await run('zipinfo', ['-1', path])).split('\n').filter(Boolean);
  const files: Record<string, Buffer> = {};
  for (const name of names) files[name] = await runBinary('unzip', ['-p', path, name]);
  return files;
}

t.test('zipFiles: unzip sees exactly the files, strings as UTF-8', async (t) => {
  const binary = new Uint8Array([0, 1, 2, 255]);
  const files = await unzip(zipFiles({ 'a.txt': 'héllo\r\n', 'b.bin': binary }));
  t.same(Object.keys(files), ['a.txt', 'b.bin']);
  t.equal(files['a.txt'].toString('utf8'), 'héllo\r\n');
  t.same([...files['b.bin']], [...binary]);
  t.same(zipFiles({ x: 'same' }), zipFiles({ x: 'same' }), 'deterministic bytes');
});

const serverKeyInput = (overrides: Partial<CertificateExportInput> = {}): CertificateExportInput => ({
  type: 'OTHER',
  compressed: false,
  commonName: 'www.example.com',
  certificate: rsaLeaf,
  chain: leafChain,
  pkcs8: rsaLeafPkcs8,
  isIntermediateCa: false,
  ...overrides,
});
const csrInput = (overrides: Partial<CertificateExportInput> = {}) => serverKeyInput({ pkcs8: undefined, ...overrides });

async function jsonOf(pending: ReturnType<typeof buildCertificateExport>) {
  const result = await pending;
  if (result.kind !== 'json') throw new Error(`expected JSON, got ${result.kind}`);
  return result.body;
}
async function zipOf(pending: ReturnType<typeof buildCertificateExport>) {
  const result = await pending;
  if (result.kind !== 'zip') throw new Error(`expected a zip, got ${result.kind}`);
  return result;
}

t.test('JSON export: certificate, chain (root last) and key in the contract layout', async (t) => {
  const body = await jsonOf(buildCertificateExport(serverKeyInput({ type: 'other' })));
  t.same(Object.keys(body), ['certificate', 'certificate_chain', 'private_key']);
  assertPemLayout(t, body.certificate!, 'CERTIFICATE', 1, false);
  assertPemLayout(t, body.certificate_chain!, 'CERTIFICATE', 2, false);
  assertPemLayout(t, body.private_key!, 'RSA PRIVATE KEY', 1, true);
  t.same(pemBlocks(body.certificate!), [rsaLeaf]);
  t.same(pemBlocks(body.certificate_chain!), leafChain, 'issuer first, root last');
  const verified = await run('openssl', [
    'verify',
    '-x509_strict',
    '-CAfile',
    rootPath,
    '-untrusted',
    await tempFile(body.certificate_chain!, 'pem'),
    await tempFile(body.certificate!, 'pem'),
  ]);
  t.match(verified, /: OK/);
  t.equal(await publicKeyOfKeyFile(await tempFile(body.private_key!, 'pem')), await publicKeyOfCertificate(rsaLeaf));

  for (const type of ['IIS', 'tomcat', 'Apache', 'NGINX']) {
    const other = await jsonOf(buildCertificateExport(serverKeyInput({ type })));
    t.equal(other.certificate, body.certificate, `${type}: same certificate`);
    t.equal(other.certificate_chain, body.certificate_chain, `${type}: same chain`);
    t.match(other.private_key, /^-----BEGIN RSA PRIVATE KEY-----/, `${type}: traditional key`);
  }

  const ec = await jsonOf(buildCertificateExport(serverKeyInput({ certificate: ecLeaf, pkcs8: ecLeafPkcs8 })));
  t.match(ec.private_key, /^-----BEGIN EC PRIVATE KEY-----/);

  const encrypted = await jsonOf(buildCertificateExport(serverKeyInput({ password: 'Key+Pass_1' })));
  assertPemLayout(t, encrypted.private_key!, 'ENCRYPTED PRIVATE KEY', 1, true);
  t.equal(
    await publicKeyOfKeyFile(await tempFile(encrypted.private_key!, 'pem'), ['-passin', 'pass:Key+Pass_1']),
    await publicKeyOfCertificate(rsaLeaf),
  );
  t.match((await jsonOf(buildCertificateExport(serverKeyInput({ password: '' })))).private_key, /RSA PRIVATE KEY/, 'empty password = none');

  const fromCsr = await jsonOf(buildCertificateExport(csrInput({ password: 'ignored-pw' })));
  t.same(fromCsr, { certificate: body.certificate, certificate_chain: body.certificate_chain, private_key: null });
  for (const password of ['abc', 'with space', 'x'.repeat(40)]) {
    t.same(
      await jsonOf(buildCertificateExport(csrInput({ password }))),
      fromCsr,
      `no key to encrypt: the password '${password.slice(0, 12)}' is ignored (§4.4.5), not judged`,
    );
  }
  for (const type of ['APACHE', 'IIS', 'TOMCAT']) {
    const zipped = await zipOf(buildCertificateExport(csrInput({ type, compressed: true, password: 'abc' })));
    t.ok(zipped.bytes.length > 0, `${type} zip of a CSR certificate with a short password`);
  }
});

t.test('export rejects unknown types and bad passwords', async (t) => {
  await assertInvalidParameter(t, () => buildCertificateExport(serverKeyInput({ type: 'PEM' })), /type must be one of/);
  await assertInvalidParameter(t, () => buildCertificateExport(serverKeyInput({ password: 'with space' })), /letters/);
  await assertInvalidParameter(t, () => buildCertificateExport(serverKeyInput({ compressed: true, password: 'x'.repeat(33) })), /32/);
  // Issue #13: a minimum length for every password-protected form (JKS's SHA-1 KeyProtector above all).
  for (const type of ['OTHER', 'APACHE', 'NGINX', 'IIS', 'TOMCAT']) {
    for (const password of ['x', 'Short#7']) {
      await assertInvalidParameter(
        t,
        () => buildCertificateExport(serverKeyInput({ type, compressed: type !== 'OTHER', password })),
        /password must be 8 to 32 bytes/,
      );
    }
  }
  t.ok(
    await buildCertificateExport(serverKeyInput({ type: 'TOMCAT', compressed: true, password: 'Eight#88' })),
    'eight characters are enough',
  );
});

t.test('zip export: file names and contents per type', async (t) => {
  const leafPem = (await jsonOf(buildCertificateExport(csrInput()))).certificate!;
  const chainPem = (await jsonOf(buildCertificateExport(csrInput()))).certificate_chain!;
  const fullChain = `${leafPem}\r\n${chainPem}`;
  const exportZip = async (input: CertificateExportInput) =>
    unzip((await zipOf(buildCertificateExport({ ...input, compressed: true }))).bytes);
  const text = (files: Record<string, Buffer>) => Object.fromEntries(Object.entries(files).map(([n, b]) => [n, b.toString('utf8')]));

  const fromCsr = {
    APACHE: { 'chain.crt': chainPem, 'server.crt': leafPem },
    NGINX: { 'server.crt': fullChain },
    IIS: { 'chain.crt': chainPem, 'server.crt': leafPem },
    TOMCAT: { 'chain.crt': chainPem, 'server.crt': leafPem },
    OTHER: { 'chain.pem': chainPem, 'cert.pem': leafPem },
  };
  for (const [type, expected] of Object.entries(fromCsr)) {
    t.same(text(await exportZip(csrInput({ type }))), expected, `${type} from a CSR`);
  }

  const key = pkcs8ToTraditionalPem(rsaLeafPkcs8);
  const withKey = {
    APACHE: { 'server.key': key, 'chain.crt': chainPem, 'server.crt': leafPem },
    NGINX: { 'server.key': key, 'server.crt': fullChain },
    OTHER: { 'server.key': key, 'chain.pem': chainPem, 'server.pem': leafPem },
  };
  for (const [type, expected] of Object.entries(withKey)) {
    t.same(text(await exportZip(serverKeyInput({ type: type.toLowerCase() }))), expected, `${type} with the server's key`);
  }

  const encrypted = text(await exportZip(serverKeyInput({ type: 'APACHE', password: 'Zip#Pass1' })));
  t.same(Object.keys(encrypted), ['server.key', 'chain.crt', 'server.crt']);
  t.match(encrypted['server.key'], /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  t.equal(
    await publicKeyOfKeyFile(await tempFile(encrypted['server.key'], 'pem'), ['-passin', 'pass:Zip#Pass1']),
    await publicKeyOfCertificate(rsaLeaf),
  );
});

t.test('zip export: IIS pfx and TOMCAT jks, with a given or a generated password', async (t) => {
  const exportZip = async (input: CertificateExportInput) =>
    unzip((await zipOf(buildCertificateExport({ ...input, compressed: true }))).bytes);

  const iisGenerated = await exportZip(serverKeyInput({ type: 'IIS' }));
  t.same(Object.keys(iisGenerated), ['server.pfx', 'keystorePass.txt']);
  const generated = iisGenerated['keystorePass.txt'].toString('utf8');
  t.match(generated, /^[A-Za-z0-9]{24}$/);
  const pfx = await openPkcs12(iisGenerated['server.pfx'], generated);
  t.equal(pfx.contents.match(/BEGIN CERTIFICATE/g)?.length, 3);
  t.match(pfx.leafOnly, /friendlyName: www.example.com/);

  const iisGiven = await exportZip(serverKeyInput({ type: 'iis', password: 'Given#12' }));
  t.same(Object.keys(iisGiven), ['server.pfx'], 'no keystorePass.txt with a given password');
  t.equal((await openPkcs12(iisGiven['server.pfx'], 'Given#12')).contents.match(/BEGIN CERTIFICATE/g)?.length, 3);

  const tomcatGenerated = await exportZip(serverKeyInput({ type: 'TOMCAT', certificate: ecLeaf, pkcs8: ecLeafPkcs8 }));
  t.same(Object.keys(tomcatGenerated), ['server.jks', 'keystorePass.txt']);
  const storePass = tomcatGenerated['keystorePass.txt'].toString('utf8');
  t.not(storePass, generated, 'a fresh password each export');
  const listing = await run('keytool', [
    '-list',
    '-v',
    '-keystore',
    await tempFile(tomcatGenerated['server.jks'], 'jks'),
    '-storepass',
    storePass,
  ]);
  t.match(listing, /Alias name: server[\s\S]*Entry type: PrivateKeyEntry[\s\S]*Certificate chain length: 3/);

  const tomcatGiven = await exportZip(serverKeyInput({ type: 'Tomcat', password: 'Given#12' }));
  t.same(Object.keys(tomcatGiven), ['server.jks']);
  t.match(
    await run('keytool', ['-list', '-keystore', await tempFile(tomcatGiven['server.jks'], 'jks'), '-storepass', 'Given#12']),
    /server, .*PrivateKeyEntry/,
  );
});

t.test(
  'IIS and encrypted-key exports derive their keys off the event loop: under 100 ms of main-thread CPU each',
  { skip: mainThreadCpuAvailable ? false : 'needs /proc/thread-self (Linux)' },
  async (t) => {
    // Before, two pbkdf2Sync and a JS loop of 100,000 hashes ran on the main thread: 280 ms per export on a quiet machine.
    const before = mainThreadCpuMs();
    const results = await Promise.all([
      ...Array.from({ length: 4 }, () => buildCertificateExport(serverKeyInput({ type: 'IIS', compressed: true, password: 'Given#12' }))),
      buildCertificateExport(serverKeyInput({ type: 'NGINX', password: 'Given#12' })),
    ]);
    const perExport = (mainThreadCpuMs() - before) / results.length;
    t.ok(perExport < 100, `${perExport.toFixed(0)} ms of main-thread CPU per export`);
    const pfx = await openPkcs12((await unzip((await zipOf(Promise.resolve(results[0]))).bytes))['server.pfx'], 'Given#12');
    t.match(pfx.info, /MAC: sha256, Iteration 100000/, 'the MAC computed in the worker verifies');
  },
);

t.test('zip file name: <cn>_<type>.zip with unsafe characters replaced', async (t) => {
  t.equal((await zipOf(buildCertificateExport(csrInput({ type: 'Apache', compressed: true })))).filename, 'www.example.com_apache.zip');
  t.equal(
    (await zipOf(buildCertificateExport(csrInput({ type: 'other', compressed: true, commonName: '*.ex ample/é-1_2' })))).filename,
    '_.ex_ample__-1_2_other.zip',
  );
  t.equal(
    (await zipOf(buildCertificateExport(csrInput({ type: 'nginx', compressed: true, commonName: 'a\u{1F600}b' })))).filename,
    'a_b_nginx.zip',
    'a character outside the BMP becomes one _',
  );
});

t.test('ISTIO export: the four cacerts files of an intermediate with its key', async (t) => {
  const istio = (overrides: Partial<CertificateExportInput> = {}) =>
    buildCertificateExport({
      type: 'istio',
      compressed: false,
      commonName: 'Export Test Intermediate',
      certificate: intermediate,
      chain: [root],
      pkcs8: intermediatePkcs8,
      isIntermediateCa: true,
      ...overrides,
    });
  const body = await jsonOf(istio());
  t.same(Object.keys(body).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
  t.same(pemBlocks(body['ca-cert.pem']!), [intermediate]);
  t.same(pemBlocks(body['root-cert.pem']!), [root]);
  t.same(pemBlocks(body['cert-chain.pem']!), [intermediate, root], 'intermediate first, ending with the root');
  t.match(body['ca-key.pem'], /^-----BEGIN RSA PRIVATE KEY-----/, 'unencrypted');
  t.equal(await publicKeyOfKeyFile(await tempFile(body['ca-key.pem']!, 'pem')), await publicKeyOfCertificate(intermediate));
  const verified = await run('openssl', [
    'verify',
    '-CAfile',
    await tempFile(body['root-cert.pem']!, 'pem'),
    '-untrusted',
    await tempFile(body['cert-chain.pem']!, 'pem'),
    await tempFile(body['ca-cert.pem']!, 'pem'),
  ]);
  t.match(verified, /: OK/);

  const zipped = await zipOf(istio({ compressed: true }));
  t.equal(zipped.filename, 'Export_Test_Intermediate_istio.zip');
  const files = await unzip(zipped.bytes);
  t.same(Object.keys(files).sort(), Object.keys(body).sort(), 'exactly the four files');
  t.equal(files['cert-chain.pem'].toString('utf8'), body['cert-chain.pem']);

  await assertInvalidParameter(t, () => istio({ password: 'Any#1234' }), /password is not allowed/);
  await assertInvalidParameter(t, () => istio({ isIntermediateCa: false }), /intermediate CA/);
  await assertInvalidParameter(t, () => istio({ pkcs8: undefined }), /server-generated key/);
});
