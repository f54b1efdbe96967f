// Fast unit tests of the CRL codec (src/x509/crl.ts, der-writer.ts): CRLs built with an in-process key, judged by
// pkijs's parser and node:crypto's verify (no openssl), plus fixed malformed inputs for the summary reader.
import { createPublicKey, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import t from 'tap';
import { NODE_HASH, SIGNATURE_OIDS, type HashAlgorithm, type Signer } from '../../src/x509/algorithms.ts';
import {
  buildCrl,
  encodeRevokedEntry,
  parseCrlSummary,
  type CrlInput,
  type EncodedEntries,
  type RevokedEntry,
} from '../../src/x509/crl.ts';
import { Oid } from '../../src/x509/oids.ts';
import { recordingSigner } from './support.ts';
import { bitString, contextConstructed, objectIdentifier, sequence, set, Tag, time, tlv, utf8String } from '../../src/x509/der-writer.ts';
import { contentOf, encodingOf, MalformedDer, readChildren, readSingle } from '../../src/x509/der-reader.ts';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });

const issuerName = sequence(set(sequence(objectIdentifier('2.5.4.3'), utf8String('Unit CA'))));
const aki = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
const base = (entries: CrlInput['entries'], over: Partial<CrlInput> = {}): CrlInput => ({
  issuerName,
  authorityKeyIdentifier: aki,
  crlNumber: 5n,
  thisUpdate: new Date('2026-01-02T03:04:05.678Z'),
  nextUpdate: new Date('2026-01-09T03:04:05Z'),
  hash: 'SHA256',
  entries,
  ...over,
});

const hex = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
const parse = (der: Uint8Array) => pkijs.CertificateRevocationList.fromBER(der.slice());

function signatureVerifies(crl: pkijs.CertificateRevocationList, hash: HashAlgorithm, publicKey: KeyObject): boolean {
  return verify(NODE_HASH[hash], crl.tbsView, publicKey, crl.signatureValue.valueBlock.valueHexView);
}

t.test('a CRL with entries: every field as RFC 5280 §5 has it, signed over exactly the TBSCertList', async (t) => {
  const entries: RevokedEntry[] = [
    { serialNumber: '8a1b2c3d4e5f60718293', revocationDate: new Date('2025-06-01T00:00:00Z'), reasonCode: 1 },
    { serialNumber: 'abc', revocationDate: new Date('2025-06-02T12:30:45Z'), reasonCode: 0 },
    { serialNumber: Uint8Array.of(0x00, 0x7f), revocationDate: new Date('2051-01-01T00:00:00Z'), reasonCode: 10 },
  ];
  const { signer, calls } = recordingSigner(ec.privateKey, 'EC256');
  const built = await buildCrl(base(entries), signer);
  t.equal(built.revokedCount, 3);
  const crl = parse(built.der);
  t.equal(hex(crl.toSchema().toBER()), hex(built.der), 'DER: pkijs re-encodes it to the same bytes');
  t.equal(crl.version, 1, 'v2');
  t.equal(crl.signature.algorithmId, SIGNATURE_OIDS.EC.SHA256);
  t.equal(crl.signatureAlgorithm.algorithmId, SIGNATURE_OIDS.EC.SHA256);
  t.equal(hex(crl.issuer.toSchema().toBER()), hex(issuerName), 'issuer copied byte for byte');
  t.equal(crl.thisUpdate.value.toISOString(), '2026-01-02T03:04:05.000Z', 'whole seconds');
  t.equal(crl.nextUpdate!.value.toISOString(), '2026-01-09T03:04:05.000Z');
  t.equal(crl.thisUpdate.type, 0, 'UTCTime before 2050');

  const revoked = crl.revokedCertificates!;
  t.same(
    revoked.map((r) => hex(r.userCertificate.valueBlock.valueHexView)),
    ['008a1b2c3d4e5f60718293', '0abc', '7f'],
    'serials: sign octet added, odd hex padded, leading zero dropped',
  );
  t.same(
    revoked.map((r) => r.revocationDate.value.toISOString()),
    ['2025-06-01T00:00:00.000Z', '2025-06-02T12:30:45.000Z', '2051-01-01T00:00:00.000Z'],
  );
  t.equal(revoked[2].revocationDate.type, 1, 'GeneralizedTime from 2050');
  const reason = (r: pkijs.RevokedCertificate) =>
    r.crlEntryExtensions?.extensions.map((e) => [e.extnID, e.critical, hex(e.extnValue.valueBlock.valueHexView)]);
  t.same(reason(revoked[0]), [[Oid.reasonCode, false, '0a0101']], 'keyCompromise');
  t.equal(reason(revoked[1]), undefined, 'unspecified is written as no extension');
  t.same(reason(revoked[2]), [[Oid.reasonCode, false, '0a010a']], 'aACompromise');

  const extensions = crl.crlExtensions!.extensions.map((e) => [e.extnID, e.critical, hex(e.extnValue.valueBlock.valueHexView)]);
  t.same(extensions, [
    [Oid.authorityKeyIdentifier, false, `3016${'8014'}${hex(aki)}`],
    [Oid.crlNumber, false, '020105'],
  ]);

  t.equal(calls.length, 1, 'signed once');
  t.equal(calls[0].hash, 'SHA256');
  t.equal(hex(calls[0].data), hex(crl.tbsView), 'the signer saw the TBSCertList and nothing else');
  t.ok(signatureVerifies(crl, 'SHA256', ec.publicKey));
  t.same(parseCrlSummary(built.der), {
    crlNumber: 5n,
    thisUpdate: new Date('2026-01-02T03:04:05Z'),
    nextUpdate: new Date('2026-01-09T03:04:05Z'),
    revokedCount: 3,
  });
});

t.test('SHA-384 and SHA-512, EC and RSA: the inner signature algorithm equals the outer one and the signature verifies', async (t) => {
  for (const [family, keys, keyAlgorithm] of [
    ['EC', ec, 'EC256'],
    ['RSA', rsa, 'RSA2048'],
  ] as const) {
    for (const hash of ['SHA256', 'SHA384', 'SHA512'] as const) {
      const { signer, calls } = recordingSigner(keys.privateKey, keyAlgorithm);
      const crl = parse((await buildCrl(base([], { hash }), signer)).der);
      t.equal(crl.signature.algorithmId, SIGNATURE_OIDS[family][hash], `${family} ${hash} inner`);
      t.equal(crl.signatureAlgorithm.algorithmId, SIGNATURE_OIDS[family][hash], `${family} ${hash} outer`);
      t.equal(calls[0].hash, hash);
      t.ok(signatureVerifies(crl, hash, createPublicKey(keys.privateKey)), `${family} ${hash} verifies`);
    }
  }
});

t.test('no revoked certificates: the list is absent, not empty (RFC 5280 §5.1.2.6)', async (t) => {
  const { signer } = recordingSigner(ec.privateKey, 'EC256');
  const built = await buildCrl(base([]), signer);
  t.equal(built.revokedCount, 0);
  const crl = parse(built.der);
  t.equal(crl.revokedCertificates, undefined);
  // Absent, not an empty SEQUENCE: the TBSCertList's fields go straight from nextUpdate to the [0] extensions.
  const [tbs] = readChildren(readSingle(built.der), Tag.SEQUENCE);
  t.same(
    readChildren(tbs).map((field) => field.tag),
    [Tag.INTEGER, Tag.SEQUENCE, Tag.SEQUENCE, Tag.UTC_TIME, Tag.UTC_TIME, 0xa0],
  );
  t.equal(hex(crl.toSchema().toBER()), hex(built.der));
  t.equal(parseCrlSummary(built.der).revokedCount, 0);
});

t.test('long lists: multi-octet lengths, entries from an async iterable, a large CRL Number', async (t) => {
  async function* many(count: number): AsyncIterable<RevokedEntry> {
    for (let i = 0; i < count; i++)
      yield {
        serialNumber: (0x100000 + i).toString(16),
        revocationDate: new Date(Date.UTC(2025, 0, 1, 0, 0, i % 60)),
        reasonCode: [0, 1, 4, 9][i % 4],
      };
  }
  const { signer } = recordingSigner(ec.privateKey, 'EC256');
  for (const count of [5, 200]) {
    const crlNumber = (1n << 158n) + 1n;
    const built = await buildCrl(base(many(count), { crlNumber }), signer);
    const crl = parse(built.der);
    t.equal(hex(crl.toSchema().toBER()), hex(built.der), `${count} entries: valid DER`);
    t.equal(crl.revokedCertificates!.length, count);
    t.equal(
      hex(crl.revokedCertificates![count - 1].userCertificate.valueBlock.valueHexView),
      (0x100000 + count - 1).toString(16).padStart(6, '0'),
    );
    t.ok(signatureVerifies(crl, 'SHA256', ec.publicKey));
    t.same(parseCrlSummary(built.der), {
      crlNumber,
      thisUpdate: new Date('2026-01-02T03:04:05Z'),
      nextUpdate: new Date('2026-01-09T03:04:05Z'),
      revokedCount: count,
    });
  }
});

t.test(
  'more entries than the first buffer holds: the same CRL whether their size is unknown, understated or exact, or they come pre-encoded',
  async (t) => {
    // About 195 KB of entries: past the 64 KB first buffer, so an unsized CRL grows more than once. pkijs's parser
    // gives up on lists this long (from ~1,500 entries), so the CRL is read with our DER reader and node:crypto here;
    // openssl judges CRLs of a million entries in bench/crl.
    const count = 6000;
    const entries: RevokedEntry[] = Array.from({ length: count }, (_, i) => ({
      serialNumber: (0x7a0000 + i).toString(16),
      revocationDate: new Date(Date.UTC(2025, 0, 1, 0, i % 60)),
      reasonCode: [0, 1, 4, 9][i % 4],
    }));
    const encoded = entries.map(encodeRevokedEntry);
    const allEntries = Buffer.concat(encoded);
    const chunks: EncodedEntries[] = [];
    for (let i = 0; i < count; i += 1000) chunks.push({ der: Buffer.concat(encoded.slice(i, i + 1000)), count: Math.min(1000, count - i) });
    const { signer } = recordingSigner(ec.privateKey, 'EC256');
    const cases: [string, CrlInput][] = [
      ['size unknown', base(entries)],
      ['size understated', base(entries, { entriesByteLength: 100 })],
      ['size exact', base(entries, { entriesByteLength: allEntries.length })],
      ['pre-encoded chunks', base(chunks, { entriesByteLength: allEntries.length })],
    ];
    let reference: string | undefined;
    for (const [name, input] of cases) {
      const built = await buildCrl(input, signer);
      t.equal(built.revokedCount, count, `${name}: the count`);
      const [tbs, algorithm, signature] = readChildren(readSingle(built.der), Tag.SEQUENCE);
      const revoked = readChildren(tbs!, Tag.SEQUENCE)[5]!;
      t.equal(hex(contentOf(revoked)), hex(allEntries), `${name}: revokedCertificates holds exactly the entries`);
      t.equal(readChildren(revoked).length, count, `${name}: ${count} of them`);
      t.equal(hex(built.der.subarray(built.entries.start, built.entries.end)), hex(allEntries), `${name}: entries locates them`);
      t.equal(hex(encodingOf(algorithm!)), hex(encodingOf(readChildren(tbs!)[1]!)), `${name}: inner algorithm = outer`);
      t.ok(verify('sha256', encodingOf(tbs!), ec.publicKey, contentOf(signature!).subarray(1)), `${name}: signature over the TBSCertList`);
      t.same(parseCrlSummary(built.der).revokedCount, count, `${name}: the summary reader agrees`);
      reference ??= hex(encodingOf(tbs!));
      t.equal(hex(encodingOf(tbs!)), reference, `${name}: the same TBSCertList as the first`);
    }
  },
);

t.test('inputs buildCrl refuses', async (t) => {
  const { signer, calls } = recordingSigner(ec.privateKey, 'EC256');
  const entry = (reasonCode: number): RevokedEntry => ({
    serialNumber: '01',
    revocationDate: new Date('2025-01-01T00:00:00Z'),
    reasonCode,
  });
  await t.rejects(buildCrl(base([], { issuerName: utf8String('x') }), signer), {
    name: 'TypeError',
    message: 'issuerName is not a DER SEQUENCE',
  });
  await t.rejects(buildCrl(base([], { issuerName: Uint8Array.of(...issuerName, 0) }), signer), { name: 'TypeError' }, 'trailing bytes');
  await t.rejects(buildCrl(base([], { authorityKeyIdentifier: new Uint8Array(0) }), signer), {
    name: 'RangeError',
    message: 'authorityKeyIdentifier is empty',
  });
  await t.rejects(buildCrl(base([], { crlNumber: -1n }), signer), { name: 'RangeError', message: 'crlNumber must fit 20 octets' });
  await t.rejects(buildCrl(base([], { crlNumber: 1n << 159n }), signer), { name: 'RangeError', message: 'crlNumber must fit 20 octets' });
  t.ok(await buildCrl(base([], { crlNumber: (1n << 159n) - 1n }), signer), 'the largest CRL Number');
  t.ok(await buildCrl(base([], { crlNumber: 0n }), signer), 'zero');
  const thisUpdate = new Date('2026-01-02T00:00:00Z');
  await t.rejects(buildCrl(base([], { thisUpdate, nextUpdate: thisUpdate }), signer), {
    name: 'RangeError',
    message: 'nextUpdate must follow thisUpdate',
  });
  await t.rejects(buildCrl(base([], { thisUpdate, nextUpdate: new Date(thisUpdate.getTime() - 1) }), signer), { name: 'RangeError' });
  for (const reason of [7, 8, 11, -1]) {
    await t.rejects(buildCrl(base([entry(reason)]), signer), {
      name: 'RangeError',
      message: `reason code ${reason} cannot appear in a CRL`,
    });
  }
  await t.rejects(buildCrl(base([{ ...entry(1), serialNumber: '0x12' }]), signer), { name: 'RangeError', message: /not a hex string/ });
  const before = calls.length;
  for (const reason of [0, 1, 2, 3, 4, 5, 6, 9, 10]) t.ok(await buildCrl(base([entry(reason)]), signer), `reason ${reason} accepted`);
  t.equal(calls.length - before, 9);
  // Room after the TBSCertList: 1,100 octets for the AlgorithmIdentifier (12 for ECDSA with SHA-256) and the BIT
  // STRING (4 header octets, then the signature), so a 1,083-octet signature is the largest that fits.
  const sized = (length: number): Signer => ({ keyAlgorithm: 'EC256', sign: async () => new Uint8Array(length).fill(7) });
  const largest = parse((await buildCrl(base([]), sized(1083))).der);
  t.equal(largest.signatureValue.valueBlock.valueHexView.length, 1083, 'the largest signature that fits');
  await t.rejects(buildCrl(base([]), sized(1084)), { name: 'RangeError', message: 'signature too large' });
});

// A v1 CRL (no version field) and defective ones, assembled by hand.
const algorithm = sequence(objectIdentifier(SIGNATURE_OIDS.EC.SHA256));
const crlNumberExtension = sequence(objectIdentifier(Oid.crlNumber), tlv(Tag.OCTET_STRING, Uint8Array.of(2, 2, 0x01, 0x00)));
const otherExtension = sequence(objectIdentifier('2.5.29.35'), tlv(Tag.OCTET_STRING, sequence()));
const signed = (...tbsFields: Uint8Array[]) => sequence(sequence(...tbsFields), algorithm, bitString(Uint8Array.of(1, 2, 3)));
const at = (iso: string) => time(new Date(iso));

t.test('parseCrlSummary: a v1 CRL, a critical flag, and the CRL Number after another extension', async (t) => {
  const entry = sequence(tlv(Tag.INTEGER, Uint8Array.of(5)), at('2025-01-01T00:00:00Z'));
  const critical = sequence(
    objectIdentifier(Oid.crlNumber),
    tlv(Tag.BOOLEAN, Uint8Array.of(0xff)),
    tlv(Tag.OCTET_STRING, Uint8Array.of(2, 1, 9)),
  );
  t.same(
    parseCrlSummary(
      signed(
        algorithm,
        issuerName,
        at('2026-01-01T00:00:00Z'),
        at('2026-02-01T00:00:00Z'),
        sequence(entry, entry),
        contextConstructed(0, sequence(otherExtension, crlNumberExtension)),
      ),
    ),
    { crlNumber: 256n, thisUpdate: new Date('2026-01-01T00:00:00Z'), nextUpdate: new Date('2026-02-01T00:00:00Z'), revokedCount: 2 },
  );
  t.equal(
    parseCrlSummary(
      signed(
        tlv(Tag.INTEGER, Uint8Array.of(1)),
        algorithm,
        issuerName,
        at('2026-01-01T00:00:00Z'),
        time(new Date('2060-01-01T00:00:00Z')),
        contextConstructed(0, sequence(critical)),
      ),
    ).crlNumber,
    9n,
  );
});

t.test('parseCrlSummary refuses what is not a CRL it can summarise, with MalformedDer', async (t) => {
  const v2 = tlv(Tag.INTEGER, Uint8Array.of(1));
  const dates = [at('2026-01-01T00:00:00Z'), at('2026-02-01T00:00:00Z')];
  const extensions = contextConstructed(0, sequence(crlNumberExtension));
  const cases: [string, Uint8Array, RegExp][] = [
    ['no nextUpdate', signed(v2, algorithm, issuerName, dates[0], extensions), /no nextUpdate/],
    ['no thisUpdate', signed(v2, algorithm, issuerName), /no thisUpdate/],
    ['no fields after thisUpdate', signed(v2, algorithm, issuerName, dates[0]), /no nextUpdate/],
    ['no extensions', signed(v2, algorithm, issuerName, ...dates), /no extensions/],
    ['entries but no extensions', signed(v2, algorithm, issuerName, ...dates, sequence()), /no extensions/],
    ['no CRL Number', signed(v2, algorithm, issuerName, ...dates, contextConstructed(0, sequence(otherExtension))), /no CRL Number/],
    ['extensions wrapper empty', signed(v2, algorithm, issuerName, ...dates, contextConstructed(0, new Uint8Array(0))), /no crlExtensions/],
    ['empty CertificateList', sequence(), /no tbsCertList/],
    ['empty TBSCertList', signed(), /no thisUpdate/],
  ];
  for (const [name, der, message] of cases) t.throws(() => parseCrlSummary(der), message, name);
  for (const [name, der] of cases) {
    const thrown = (() => {
      try {
        return parseCrlSummary(der);
      } catch (error) {
        return error;
      }
    })();
    t.ok(thrown instanceof MalformedDer, `${name}: MalformedDer`);
  }
});
