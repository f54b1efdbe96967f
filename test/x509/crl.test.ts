import t from 'tap';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  buildCrl,
  encodeRevokedEntry,
  parseCrlSummary,
  type CrlInput,
  type EncodedEntries,
  type RevokedEntry,
} from '../../src/x509/crl.ts';
import { MalformedDer } from '../../src/x509/der-reader.ts';
import { createOpensslPki, openssl, opensslDate, runOpenssl, type OpensslPki } from './fixtures/openssl-pki.ts';

const HOUR = 3_600_000;
// Relative to now, since `openssl verify -crl_check` refuses expired CRLs; whole seconds, as DER keeps them.
const THIS_UPDATE = new Date(Math.floor(Date.now() / HOUR) * HOUR - HOUR);
const NEXT_UPDATE = new Date(THIS_UPDATE.getTime() + 7 * 24 * HOUR);
const REVOKED_AT = new Date(THIS_UPDATE.getTime() - 20 * HOUR + 15_000);

const UNSPECIFIED_SERIAL = '0f0e0d0c0b0a';

const [ecPki, rsaPki] = await Promise.all([createOpensslPki('EC256'), createOpensslPki('RSA2048')]);
t.teardown(() => Promise.all([ecPki, rsaPki].map((pki) => rm(pki.dir, { recursive: true, force: true }))));

function crlInput(pki: OpensslPki, entries: CrlInput['entries'], overrides: Partial<CrlInput> = {}): CrlInput {
  return {
    issuerName: pki.caSubjectDer,
    authorityKeyIdentifier: pki.caSubjectKeyIdentifier,
    crlNumber: 42n,
    thisUpdate: THIS_UPDATE,
    nextUpdate: NEXT_UPDATE,
    hash: 'SHA256',
    entries,
    ...overrides,
  };
}

/** The first leaf revoked for keyCompromise, plus an entry with reason 0 for a serial of no leaf here. */
function twoEntries(pki: OpensslPki, serialForm: 'hex' | 'bytes' = 'hex'): RevokedEntry[] {
  const serial = (hex: string) => (serialForm === 'hex' ? hex : Buffer.from(hex, 'hex'));
  return [
    { serialNumber: serial(pki.leaves[0].serialHex), revocationDate: REVOKED_AT, reasonCode: 1 },
    { serialNumber: serial(UNSPECIFIED_SERIAL), revocationDate: REVOKED_AT, reasonCode: 0 },
  ];
}

/** Writes the CRL as name.der and name.pem (converted by openssl) into the PKI's folder. */
async function writeCrl(pki: OpensslPki, name: string, der: Uint8Array): Promise<void> {
  await writeFile(join(pki.dir, `${name}.der`), der);
  await openssl(['crl', '-inform', 'DER', '-in', `${name}.der`, '-out', `${name}.pem`], pki.dir);
}

const crlText = (pki: OpensslPki, name: string) =>
  openssl(['crl', '-inform', 'DER', '-in', `${name}.der`, '-noout', '-text', '-verify', '-CAfile', 'ca.pem'], pki.dir);

const verifyLeaf = (pki: OpensslPki, name: string, leafPath: string) =>
  runOpenssl(['verify', '-crl_check', '-CRLfile', `${name}.pem`, '-CAfile', 'ca.pem', leafPath], pki.dir);

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

const colonHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').toUpperCase().match(/../g)!.join(':');

t.test('EC CA: a keyCompromise entry and a reason-0 entry, judged by openssl', async (t) => {
  const { der, revokedCount } = await buildCrl(crlInput(ecPki, twoEntries(ecPki)), ecPki.caSigner);
  t.equal(revokedCount, 2);
  await writeCrl(ecPki, 'two', der);

  const text = await crlText(ecPki, 'two');
  t.match(text, /verify OK/);
  t.match(text, /Version 2 \(0x1\)/);
  t.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  t.match(text, /Issuer: C = CN, O = Test Org, CN = Test Root CA/);
  t.match(text, `Last Update: ${opensslDate(THIS_UPDATE)}`);
  t.match(text, `Next Update: ${opensslDate(NEXT_UPDATE)}`);
  t.match(text, /X509v3 CRL Number: *\n\s+42\n/);
  t.match(text, new RegExp(`X509v3 Authority Key Identifier: *\\n\\s+(keyid:)?${colonHex(ecPki.caSubjectKeyIdentifier)}\\n`));

  const entryBlocks = text.split('Serial Number: ').slice(1);
  t.equal(entryBlocks.length, 2);
  t.match(entryBlocks[0], new RegExp(`^8A1B2C3D4E5F60718293\\n\\s+Revocation Date: ${opensslDate(REVOKED_AT)}`));
  t.match(entryBlocks[0], /CRL Reason Code: *\n\s+Key Compromise/);
  t.match(entryBlocks[1], new RegExp(`^0F0E0D0C0B0A\\n\\s+Revocation Date: ${opensslDate(REVOKED_AT)}\\n\\s+Signature Algorithm`));
  t.notMatch(entryBlocks[1], /CRL entry extensions/);

  const revoked = await verifyLeaf(ecPki, 'two', ecPki.leaves[0].path);
  t.not(revoked.code, 0);
  t.match(revoked.output, /certificate revoked/);
  const good = await verifyLeaf(ecPki, 'two', ecPki.leaves[1].path);
  t.equal(good.code, 0, good.output);
  t.match(good.output, /: OK/);

  t.same(parseCrlSummary(der), { crlNumber: 42n, thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE, revokedCount: 2 });
});

t.test('an empty CRL has no revokedCertificates and is valid', async (t) => {
  const { der, revokedCount } = await buildCrl(crlInput(ecPki, [], { crlNumber: 1n }), ecPki.caSigner);
  t.equal(revokedCount, 0);
  await writeCrl(ecPki, 'empty', der);
  const text = await crlText(ecPki, 'empty');
  t.match(text, /verify OK/);
  t.match(text, /No Revoked Certificates/);
  const leaf = await verifyLeaf(ecPki, 'empty', ecPki.leaves[0].path);
  t.equal(leaf.code, 0, leaf.output);
  t.same(parseCrlSummary(der), { crlNumber: 1n, thisUpdate: THIS_UPDATE, nextUpdate: NEXT_UPDATE, revokedCount: 0 });
});

t.test('times: UTCTime through 2049, GeneralizedTime from 2050', async (t) => {
  const thisUpdate = new Date('2049-12-31T23:59:59Z');
  const nextUpdate = new Date('2050-01-07T00:00:00Z');
  const entries = [{ serialNumber: 'abc', revocationDate: new Date('2050-01-01T00:00:01Z'), reasonCode: 5 }];
  const { der } = await buildCrl(crlInput(ecPki, entries, { thisUpdate, nextUpdate, crlNumber: 2n ** 64n }), ecPki.caSigner);
  await writeCrl(ecPki, 'y2050', der);

  const structure = await openssl(['asn1parse', '-inform', 'DER', '-in', 'y2050.der'], ecPki.dir);
  const times = [...structure.matchAll(/(UTCTIME|GENERALIZEDTIME)\s*:(\S+)/g)].map((m) => `${m[1]} ${m[2]}`);
  t.same(times, ['UTCTIME 491231235959Z', 'GENERALIZEDTIME 20500107000000Z', 'GENERALIZEDTIME 20500101000001Z']);

  const text = await crlText(ecPki, 'y2050');
  t.match(text, /verify OK/);
  t.match(text, /X509v3 CRL Number: *\n\s+18446744073709551616\n/);
  t.match(text, /Serial Number: 0ABC\n\s+Revocation Date: Jan {2}1 00:00:01 2050 GMT/);
  t.match(text, /Cessation Of Operation/);
  t.same(parseCrlSummary(der), { crlNumber: 2n ** 64n, thisUpdate, nextUpdate, revokedCount: 1 });
});

t.test('RSA CA: the same bytes as pkijs, whether entries come sync as hex or async as bytes', async (t) => {
  const entries = twoEntries(rsaPki, 'hex');
  const { der } = await buildCrl(crlInput(rsaPki, entries), rsaPki.caSigner);

  async function* asyncBytes() {
    yield* twoEntries(rsaPki, 'bytes');
  }
  const fromAsync = await buildCrl(crlInput(rsaPki, asyncBytes()), rsaPki.caSigner);
  t.same(Buffer.from(fromAsync.der), Buffer.from(der), 'PKCS#1 v1.5 is deterministic, so whole CRLs compare');

  t.same(Buffer.from(await pkijsCrl(rsaPki, entries)), Buffer.from(der), 'byte-identical to pkijs');

  await writeCrl(rsaPki, 'rsa', der);
  const text = await crlText(rsaPki, 'rsa');
  t.match(text, /verify OK/);
  t.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
  t.not((await verifyLeaf(rsaPki, 'rsa', rsaPki.leaves[0].path)).code, 0);
  t.equal((await verifyLeaf(rsaPki, 'rsa', rsaPki.leaves[1].path)).code, 0);
});

/** The same CRL built with pkijs objects, the reference encoding. */
async function pkijsCrl(pki: OpensslPki, entries: RevokedEntry[]): Promise<Uint8Array> {
  const time = (value: Date) => new pkijs.Time({ type: 0, value });
  const extension = (extnID: string, value: asn1js.BaseBlock) =>
    new pkijs.Extension({ extnID, critical: false, extnValue: value.toBER(false) });
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    issuer: pkijs.RelativeDistinguishedNames.fromBER(pki.caSubjectDer.slice()),
    thisUpdate: time(THIS_UPDATE),
    nextUpdate: time(NEXT_UPDATE),
    revokedCertificates: entries.map((entry) => {
      const magnitude = typeof entry.serialNumber === 'string' ? Buffer.from(entry.serialNumber, 'hex') : entry.serialNumber;
      const content = magnitude[0] & 0x80 ? Buffer.concat([Buffer.of(0), magnitude]) : magnitude;
      return new pkijs.RevokedCertificate({
        userCertificate: new asn1js.Integer({ valueHex: content.slice() }),
        revocationDate: time(entry.revocationDate),
        ...(entry.reasonCode === 0
          ? {}
          : {
              crlEntryExtensions: new pkijs.Extensions({
                extensions: [extension('2.5.29.21', new asn1js.Enumerated({ value: entry.reasonCode }))],
              }),
            }),
      });
    }),
    crlExtensions: new pkijs.Extensions({
      extensions: [
        extension(
          '2.5.29.35',
          new pkijs.AuthorityKeyIdentifier({
            keyIdentifier: new asn1js.OctetString({ valueHex: pki.caSubjectKeyIdentifier.slice() }),
          }).toSchema(),
        ),
        extension('2.5.29.20', new asn1js.Integer({ value: 42 })),
      ],
    }),
  });
  // pkijs's own sign() leaves out the NULL parameters that RFC 4055 requires for sha256WithRSAEncryption, so
  // set the algorithm with them and sign the pkijs-encoded TBS here.
  const algorithm = new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.11', algorithmParams: new asn1js.Null() });
  crl.signature = algorithm;
  crl.signatureAlgorithm = algorithm;
  const tbs = new Uint8Array(crl.toSchema(true).valueBlock.value[0].toBER(false));
  crl.tbsView = tbs;
  const key = await crypto.subtle.importKey('pkcs8', pki.caPkcs8.slice(), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  crl.signatureValue = new asn1js.BitString({ valueHex: await crypto.subtle.sign('RSASSA-PKCS1-v1_5', key, tbs) });
  return new Uint8Array(crl.toSchema(false).toBER(false));
}

t.test('pre-encoded pages of entries give the same CRL, whether their size is announced, short or unknown', async (t) => {
  const count = 5_000;
  const entries: RevokedEntry[] = Array.from({ length: count }, (_, i) => ({
    serialNumber: `${(0x80000000 + i * 7919).toString(16)}c3c3c3`,
    revocationDate: new Date(REVOKED_AT.getTime() - i * 1000),
    reasonCode: [0, 1, 4, 9][i % 4]!,
  }));
  async function* pages(size: number): AsyncGenerator<EncodedEntries> {
    for (let start = 0; start < count; start += size) {
      const page = entries.slice(start, start + size).map(encodeRevokedEntry);
      yield { der: Buffer.concat(page), count: page.length };
    }
  }
  const byteLength = entries.reduce((total, entry) => total + encodeRevokedEntry(entry).length, 0);
  const fromObjects = await buildCrl(crlInput(rsaPki, entries), rsaPki.caSigner);
  const announced = await buildCrl(crlInput(rsaPki, pages(1000), { entriesByteLength: byteLength }), rsaPki.caSigner);
  const short = await buildCrl(crlInput(rsaPki, pages(700), { entriesByteLength: 100 }), rsaPki.caSigner);
  const unknown = await buildCrl(crlInput(rsaPki, pages(3000)), rsaPki.caSigner);
  for (const [name, built] of Object.entries({ announced, short, unknown })) {
    t.equal(built.revokedCount, count, `${name}: count`);
    t.same(Buffer.from(built.der), Buffer.from(fromObjects.der), `${name}: byte-identical (PKCS#1 v1.5 is deterministic)`);
  }
  t.same(
    Buffer.from(announced.der.subarray(announced.entries.start, announced.entries.end)),
    Buffer.concat(entries.map(encodeRevokedEntry)),
    'entries locates the entries in the CRL',
  );
  await writeCrl(rsaPki, 'pages', announced.der);
  const text = await crlText(rsaPki, 'pages');
  t.match(text, /verify OK/);
  t.equal(text.split('Serial Number: ').length - 1, count, 'openssl counts every entry');
});

t.test('30,000 streamed entries span several pages and stay valid', async (t) => {
  const count = 30_000;
  function* entries(): Generator<RevokedEntry> {
    for (let i = 1; i <= count; i++) {
      yield { serialNumber: `${(0x7f000000 + i).toString(16)}a5a5a5a5a5a5`, revocationDate: REVOKED_AT, reasonCode: i % 3 };
    }
  }
  const { der, revokedCount } = await buildCrl(crlInput(ecPki, entries()), ecPki.caSigner);
  t.equal(revokedCount, count);
  t.ok(der.length > 1 << 20, 'more than one 1 MiB page');
  await writeCrl(ecPki, 'many', der);
  const text = await crlText(ecPki, 'many');
  t.match(text, /verify OK/);
  t.equal(text.split('Serial Number: ').length - 1, count);
  t.equal(text.split('Key Compromise').length - 1, count / 3);
  t.equal(parseCrlSummary(der).revokedCount, count);
});

t.test('SHA-384 and SHA-512 CRLs name the same algorithm inside and outside the signed part', async (t) => {
  // openssl 3.0's `crl -verify` does not compare the two, so asn1parse reads both AlgorithmIdentifiers.
  const expected = {
    EC256: { SHA384: 'ecdsa-with-SHA384', SHA512: 'ecdsa-with-SHA512' },
    RSA2048: { SHA384: 'sha384WithRSAEncryption', SHA512: 'sha512WithRSAEncryption' },
  } as const;
  for (const [pki, names] of [
    [ecPki, expected.EC256],
    [rsaPki, expected.RSA2048],
  ] as const) {
    for (const hash of ['SHA384', 'SHA512'] as const) {
      const name = `crl-${hash}-${names[hash]}`;
      const { der } = await buildCrl(crlInput(pki, twoEntries(pki), { hash }), pki.caSigner);
      await writeCrl(pki, name, der);
      const objects = (await openssl(['asn1parse', '-inform', 'DER', '-in', `${name}.der`], pki.dir))
        .split('\n')
        .filter((line) => /:(ecdsa-with|sha\d+WithRSA)/.test(line))
        .map((line) => line.slice(line.lastIndexOf(':') + 1).trim());
      t.same(objects, [names[hash], names[hash]], `${names[hash]}: tbsCertList.signature equals signatureAlgorithm`);
      t.match(await crlText(pki, name), /verify OK/, `${names[hash]}: the signature verifies`);
    }
  }
});

t.test('rejects what a CRL cannot carry', async (t) => {
  const entry = (reasonCode: number, serialNumber: string | Uint8Array = '01'): RevokedEntry[] => [
    { serialNumber, revocationDate: REVOKED_AT, reasonCode },
  ];
  for (const reasonCode of [7, 8, 11, -1]) {
    await t.rejects(buildCrl(crlInput(ecPki, entry(reasonCode)), ecPki.caSigner), RangeError, `reason ${reasonCode}`);
  }
  await t.rejects(buildCrl(crlInput(ecPki, entry(1, '12:34')), ecPki.caSigner), RangeError, 'serial with separators');
  await t.rejects(buildCrl(crlInput(ecPki, [], { issuerName: Uint8Array.of(0x30, 5, 1) }), ecPki.caSigner), TypeError);
  await t.rejects(buildCrl(crlInput(ecPki, [], { nextUpdate: THIS_UPDATE }), ecPki.caSigner), RangeError);
  await t.rejects(buildCrl(crlInput(ecPki, [], { crlNumber: -1n }), ecPki.caSigner), RangeError);
  await t.rejects(buildCrl(crlInput(ecPki, [], { crlNumber: 2n ** 159n }), ecPki.caSigner), RangeError);
});

t.test('parseCrlSummary refuses what is not a CRL', async (t) => {
  const { der } = await buildCrl(crlInput(ecPki, twoEntries(ecPki, 'bytes')), ecPki.caSigner);
  for (const bad of [new Uint8Array(0), Uint8Array.of(0x30, 0x00), der.subarray(0, der.length - 1), ecPki.caDer]) {
    t.ok(thrownBy(() => parseCrlSummary(bad)) instanceof MalformedDer);
  }
});
