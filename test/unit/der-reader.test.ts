// Unit tests of der-reader.ts's OBJECT IDENTIFIER decoding: fixed vectors (X.690 8.19), arcs on both sides of the
// sizes where the decoder moves from numbers to BigInt, random OIDs round-tripped through der-writer.ts's encoder,
// and the malformed encodings it must refuse.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { MalformedDer, readOid, readSingle } from '../../src/x509/der-reader.ts';
import { hexToBytes, objectIdentifier } from '../../src/x509/der-writer.ts';
import { isDottedOid } from '../../src/x509/extensions.ts';

const oidOfHex = (hex: string) => readOid(readSingle(hexToBytes(hex)));

t.test('fixed vectors', async (t) => {
  const vectors: [string, string][] = [
    ['0603550403', '2.5.4.3'],
    ['06082a8648ce3d030107', '1.2.840.10045.3.1.7'],
    ['0603813403', '2.100.3'], // X.690's own example: the joint arc 180
    ['06012f', '1.7'],
    ['060100', '0.0'],
    ['06014f', '1.39'],
    ['060150', '2.0'],
    ['06028f7f', '2.1967'],
    // 2^53 + 1 as the third arc: past exact doubles
    ['06092a9080808080808001', '1.2.9007199254740993'],
  ];
  for (const [hex, dotted] of vectors) t.equal(oidOfHex(hex), dotted, `${hex} is ${dotted}`);
});

t.test('arcs around the number/BigInt boundary and UUID arcs round-trip through the encoder', async (t) => {
  const exponents = [0, 6, 7, 13, 14, 31, 32, 44, 45, 46, 51, 52, 53, 54, 63, 64, 127, 128];
  const arcs = exponents.flatMap((e) => [2n ** BigInt(e) - 1n, 2n ** BigInt(e), 2n ** BigInt(e) + 1n]);
  for (const arc of arcs) {
    for (const dotted of [`1.3.${arc}`, `2.${arc}`, `2.${arc}.5`]) t.equal(readOid(readSingle(objectIdentifier(dotted))), dotted);
  }
  let checked = 0;
  for (let i = 0; i < 500; i++) {
    const count = 1 + (i % 6);
    const rest = Array.from({ length: count }, (_, k) => BigInt(`0x${randomBytes(1 + ((i + k) % 17)).toString('hex')}`) >> BigInt(k % 8));
    const first = i % 3;
    const second = first < 2 ? BigInt(i % 40) : rest.shift()!;
    const dotted = [first, second, ...rest].join('.');
    if (readOid(readSingle(objectIdentifier(dotted))) === dotted) checked++;
    else t.fail(`round trip of ${dotted}`);
  }
  t.equal(checked, 500, '500 random OIDs round-trip');
});

t.test('an OID the service accepts to write is one it reads back', async (t) => {
  const limit = 2n ** 140n;
  for (const dotted of [`1.3.${limit - 1n}`, `2.${limit - 81n}`, `2.${limit - 81n}.${limit - 1n}`]) {
    t.ok(isDottedOid(dotted), `accepted: ${dotted}`);
    t.equal(readOid(readSingle(objectIdentifier(dotted))), dotted, 'and read back');
  }
  for (const dotted of [`1.3.${limit}`, `2.${limit - 80n}`, '1.40', '3.1']) t.notOk(isDottedOid(dotted), `refused: ${dotted}`);
});

t.test('malformed encodings are refused', async (t) => {
  const refused = (hex: string) => {
    try {
      oidOfHex(hex);
      return false;
    } catch (error) {
      return error instanceof MalformedDer;
    }
  };
  t.ok(refused('0600'), 'empty');
  t.ok(refused('060181'), 'a lone octet with its high bit set');
  t.ok(refused('06022a81'), 'the last arc unfinished');
  t.ok(refused('0603558003'), 'an arc padded with 0x80 (not the shortest form)');
  t.ok(refused(`0615${'ff'.repeat(20)}01`), 'an arc of 21 octets');
  t.notOk(refused(`0614${'ff'.repeat(19)}01`), 'one of 20 is read');
  // What an unauthenticated OCSP request may carry (its body limit is 64 KiB): refused before a BigInt grows with it.
  t.ok(refused(`0682fffe2b${'ff'.repeat(65_532)}01`), 'one arc of 64 KiB');
  t.ok(refused('06028001'), 'the first arc padded');
  t.ok(refused('0403550403'), 'not an OID tag');
  t.notOk(refused('0603550403'), 'while a well-formed one is read');
});
