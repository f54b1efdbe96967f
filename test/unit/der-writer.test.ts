// Fast unit tests of der-writer.ts (and the SIGNED{} wrapper), the DER helpers under the CRL and OCSP codecs: fixed vectors (X.690 length
// forms, GeneralizedTime text, integer magnitudes) and the paged sink's byte-for-byte output.
import t from 'tap';
import type { Signer } from '../../src/x509/algorithms.ts';
import { SIGNATURE_OIDS } from '../../src/x509/algorithms.ts';
import {
  bigintBytes,
  bytesToHex,
  enumerated,
  generalizedTime,
  hexToBytes,
  objectIdentifier,
  sequence,
  tlvHeader,
} from '../../src/x509/der-writer.ts';
import { requireDerSequence } from '../../src/x509/der-reader.ts';
import { signatureAlgorithm, signStructure } from '../../src/x509/public-key.ts';
import { extension } from '../../src/x509/extensions.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

t.test('tlvHeader: the shortest definite length form (X.690 8.1.3)', async (t) => {
  const vectors: [number, string][] = [
    [0, '3000'],
    [0x7f, '307f'],
    [0x80, '308180'],
    [0xff, '3081ff'],
    [0x100, '30820100'],
    [0xffff, '3082ffff'],
    [0x10000, '3083010000'],
    [0xffffff, '3083ffffff'],
    [0x1000000, '308401000000'],
    [0x12345678, '308412345678'],
  ];
  for (const [length, expected] of vectors) t.equal(hex(tlvHeader(0x30, length)), expected, `length ${length}`);
  t.equal(hex(tlvHeader(0xa1, 3)), 'a103', 'the tag is written as given');
});

t.test('enumerated: one content octet, 0 to 127', async (t) => {
  t.equal(hex(enumerated(0)), '0a0100');
  t.equal(hex(enumerated(10)), '0a010a');
  t.equal(hex(enumerated(127)), '0a017f');
  for (const bad of [-1, 128, 1.5, Number.NaN])
    t.throws(() => enumerated(bad), { name: 'RangeError', message: `ENUMERATED ${bad} out of range` });
});

t.test('generalizedTime: YYYYMMDDHHMMSSZ, whole seconds, UTC', async (t) => {
  const text = (date: Date) => Buffer.from(generalizedTime(date).subarray(2)).toString('latin1');
  t.equal(hex(generalizedTime(new Date('2026-03-04T05:06:07.890Z'))), `180f${Buffer.from('20260304050607Z').toString('hex')}`);
  t.equal(text(new Date('1999-12-31T23:59:59.999Z')), '19991231235959Z', 'milliseconds dropped, not rounded');
  t.equal(text(new Date('2049-01-01T00:00:00Z')), '20490101000000Z', 'GeneralizedTime even before 2050');
  t.equal(text(new Date('0005-01-02T03:04:05Z')), '00050102030405Z', 'four-digit year, zero padded');
  t.equal(text(new Date('9999-12-31T23:59:59Z')), '99991231235959Z');
  t.equal(text(new Date('0000-01-01T00:00:00Z')), '00000101000000Z');
  t.throws(() => generalizedTime(new Date('+010000-01-01T00:00:00Z')), { name: 'RangeError', message: 'date out of range' });
  t.throws(() => generalizedTime(new Date('-000001-01-01T00:00:00Z')), { name: 'RangeError', message: 'date out of range' });
  t.throws(() => generalizedTime(new Date(Number.NaN)), { name: 'RangeError', message: 'date out of range' });
});

t.test('integers and hex', async (t) => {
  t.equal(hex(bigintBytes(0n)), '00');
  t.equal(hex(bigintBytes(255n)), 'ff');
  t.equal(hex(bigintBytes(256n)), '0100');
  t.equal(hex(bigintBytes(0xabcn)), '0abc', 'odd hex length padded on the left');
  t.equal(hex(bigintBytes((1n << 159n) - 1n)), `7f${'ff'.repeat(19)}`);
  t.throws(() => bigintBytes(-1n), { name: 'RangeError', message: 'negative integers are not supported' });
  t.equal(hex(hexToBytes('')), '');
  t.equal(hex(hexToBytes('a')), '0a');
  t.equal(hex(hexToBytes('ABcd01')), 'abcd01', 'either case');
  for (const bad of ['0x12', '12 34', 'g1', '12:34', '-1'])
    t.throws(() => hexToBytes(bad), { name: 'RangeError', message: `not a hex string: ${bad}` }, bad);
  t.throws(
    () => hexToBytes('z'.repeat(100)),
    { message: `not a hex string: ${'z'.repeat(40)}` },
    'the message quotes 40 characters at most',
  );
  const backing = Uint8Array.of(1, 2, 3, 4, 5);
  t.equal(bytesToHex(backing.subarray(1, 3)), '0203', 'a view: only its own bytes');
  t.equal(bytesToHex(new Uint8Array(0)), '');
});

t.test('a non-critical extension and requireDerSequence', async (t) => {
  t.equal(hex(extension('2.5.29.20', false, Uint8Array.of(2, 1, 5))), '300a0603551d14' + '0403020105');
  const der = sequence(objectIdentifier('1.2.3'));
  t.equal(requireDerSequence(der, 'x'), der, 'returns the same bytes');
  for (const bad of [Uint8Array.of(0x31, 0), Uint8Array.of(0x30, 1), Uint8Array.of(0x30, 0, 0), new Uint8Array(0)]) {
    t.throws(() => requireDerSequence(bad, 'thing'), { name: 'TypeError', message: 'thing is not a DER SEQUENCE' }, hex(bad));
  }
});

t.test('signStructure: SEQUENCE { tbs, algorithm, BIT STRING signature, ...trailer }, the signer given the TBS', async (t) => {
  const seen: unknown[] = [];
  const signer: Signer = {
    keyAlgorithm: 'EC256',
    sign: async (hash, data) => {
      seen.push([hash, hex(data)]);
      return Uint8Array.of(0xaa, 0xbb);
    },
  };
  const tbs = sequence(objectIdentifier('1.2.3'));
  const algorithm = signatureAlgorithm(signer, 'SHA384');
  t.equal(hex(algorithm), hex(sequence(objectIdentifier(SIGNATURE_OIDS.EC.SHA384))), 'ECDSA: no parameters');
  const rsa: Signer = { keyAlgorithm: 'RSA3072', sign: signer.sign };
  t.equal(
    hex(signatureAlgorithm(rsa, 'SHA512')),
    hex(sequence(objectIdentifier(SIGNATURE_OIDS.RSA.SHA512), Uint8Array.of(5, 0))),
    'RSA: NULL parameters',
  );
  const trailer = Uint8Array.of(0xa0, 0);
  const signed = await signStructure(tbs, signer, 'SHA384', trailer);
  t.equal(hex(signed), hex(sequence(tbs, algorithm, Uint8Array.of(3, 3, 0, 0xaa, 0xbb), trailer)));
  t.same(seen, [['SHA384', hex(tbs)]]);
  const large = sequence(new Uint8Array(300));
  t.equal(
    hex(await signStructure(large, signer, 'SHA256')),
    hex(sequence(large, signatureAlgorithm(signer, 'SHA256'), Uint8Array.of(3, 3, 0, 0xaa, 0xbb))),
    'long-form length',
  );
});
