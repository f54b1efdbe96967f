/** The pure codecs and validators under the certificate builder: PEM, DER helpers, names, SANs, keys. */
import t from 'tap';
import { ecdsaRawToDer, Tag, time } from '../../src/x509/der-writer.ts';
import { ecdsaDerToRaw, readChildren, readSingle, readTime } from '../../src/x509/der-reader.ts';
import {
  validateCustomExtensions,
  validateDistinguishedName,
  validateKeyUsages,
  validateSubjectAltNames,
} from '../../src/services/request-fields.ts';
import { decodeKeyUsage, embeddedIpv4, formatIp, parseIp } from '../../src/x509/extensions.ts';
import { decodeName, encodeName } from '../../src/x509/name.ts';
import { joinPem, parsePemBlocks, toPem } from '../../src/x509/pem.ts';
import { keyAlgorithmOfSpki } from '../../src/x509/public-key.ts';
import { appErrorOf, generateTestKey, openssl, scratch } from './support.ts';

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);

t.test('toPem: 64-character lines, \\r\\n, no break after END; joinPem; openssl reads it', async (t) => {
  const pem = toPem('CERTIFICATE', bytes(200));
  const lines = pem.split('\r\n');
  t.equal(lines[0], '-----BEGIN CERTIFICATE-----');
  t.equal(lines.at(-1), '-----END CERTIFICATE-----');
  t.ok(lines.slice(1, -2).every((line) => line.length === 64));
  t.ok(lines.at(-2)!.length > 0 && lines.at(-2)!.length <= 64);
  t.notOk(pem.endsWith('\n'));
  t.notMatch(pem, /[^\r]\n/, 'every break is \\r\\n');
  t.equal(lines.slice(1, -1).join(''), Buffer.from(bytes(200)).toString('base64'));
  const chain = joinPem([pem, toPem('CERTIFICATE', bytes(3))]);
  t.match(chain, '-----END CERTIFICATE-----\r\n-----BEGIN CERTIFICATE-----');
  t.same(parsePemBlocks(chain), [bytes(200), bytes(3)]);

  const work = await scratch('pem');
  const key = await generateTestKey('EC256');
  const read = await openssl(['pkey', '-pubin', '-in', await work.write('pub.pem', toPem('PUBLIC KEY', key.spki)), '-noout', '-text']);
  t.ok(read.ok, `openssl reads \\r\\n PEM: ${read.stderr}`);
});

t.test('parsePemBlocks tolerance and errors', async (t) => {
  const pem = toPem('CERTIFICATE', bytes(100));
  const lf = pem.replaceAll('\r\n', '\n');
  for (const [name, text] of [
    ['LF', lf],
    ['mixed', lf.replace('\n', '\r\n')],
    ['whitespace around', `\r\n  \t${lf}\n\n `],
    ['explanatory text around', `subject=CN = x\n${lf}\ntrailing words`],
  ]) {
    t.same(parsePemBlocks(text, 'CERTIFICATE'), [bytes(100)], name);
  }
  for (const [name, text, message] of [
    ['nothing', '', /no PEM block/],
    ['garbage', 'hello world', /no PEM block/],
    ['bad base64', '-----BEGIN CERTIFICATE-----\nAB$C\n-----END CERTIFICATE-----', /base64/],
    ['empty body', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----', /base64/],
    ['wrong label', toPem('PRIVATE KEY', bytes(10)), /expected CERTIFICATE, found PRIVATE KEY/],
    ['mismatched END', lf.replace('END CERTIFICATE', 'END X509 CRL'), /closed by/],
    ['unterminated second block', `${lf}\n-----BEGIN CERTIFICATE-----\nAAAA`, /without a matching END/],
    ['END without BEGIN', `-----END CERTIFICATE-----\n${lf}`, /END line without a matching BEGIN/],
    ['lowercase label', lf.replaceAll('CERTIFICATE', 'certificate'), /malformed BEGIN line/],
    ['BEGIN line cut short', '-----BEGIN CERTIFICATE\nAAAA\n-----END CERTIFICATE-----', /malformed BEGIN line/],
  ] as const) {
    t.match(await appErrorOf(() => parsePemBlocks(text, 'CERTIFICATE', 'certificate')), { code: 'PCA.00020001', message }, name);
  }
});

t.test('parsePemBlocks bounds: block count and block size; 2 MiB of hostile text is one linear pass', async (t) => {
  const block = toPem('CERTIFICATE', bytes(100));
  t.equal(parsePemBlocks(joinPem(Array(3).fill(block)), 'CERTIFICATE', 'chain', { maxBlocks: 3 }).length, 3);
  t.match(await appErrorOf(() => parsePemBlocks(joinPem(Array(4).fill(block)), 'CERTIFICATE', 'chain', { maxBlocks: 3 })), {
    code: 'PCA.00020001',
    message: /more than 3 PEM blocks/,
  });
  t.match(await appErrorOf(() => parsePemBlocks(toPem('CERTIFICATE', bytes(3000)), 'CERTIFICATE', 'chain', { maxBlockChars: 2000 })), {
    code: 'PCA.00020001',
    message: /longer than 2000/,
  });

  // The contract allows a 2 MiB certificate_chain. A lazy BEGIN…END regex took 7.7 s on 578 KB of repeated BEGIN
  // lines (quadratic); one pass takes milliseconds. CPU time, not wall time, with a 50-fold margin.
  const size = 2 * 1024 * 1024;
  const hostile = (unit: string) => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
  for (const [name, text] of [
    ['repeated BEGIN lines', hostile('-----BEGIN CERTIFICATE-----\n')],
    ['repeated BEGIN lines cut short', hostile('-----BEGIN CERTIFICATE\n')],
    ['repeated END lines', hostile('-----END CERTIFICATE-----\n')],
    ['dashes', hostile('-')],
    ['tiny blocks', hostile('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    ['nine blocks after 2 MiB of text', `${hostile('---- ----BEGIN x ----- END\n')}\n${joinPem(Array(9).fill(block))}`],
  ]) {
    const before = process.cpuUsage();
    const error = await appErrorOf(() => parsePemBlocks(text, 'CERTIFICATE', 'certificate_chain', { maxBlocks: 8 }));
    const { user, system } = process.cpuUsage(before);
    t.match(error, { statusCode: 400 }, `${name}: refused`);
    t.ok(user + system < 1_000_000, `${name}: ${((user + system) / 1000).toFixed(1)} ms of CPU`);
  }
});

t.test('names: one attribute per RDN in C, ST, L, O, OU, CN order; PrintableString country', async (t) => {
  const dn = {
    common_name: '网格 CA',
    country: 'CN',
    state: 'zhejiang',
    locality: 'hangzhou',
    organization: 'huawei-cloud',
    organizational_unit: 'container',
  };
  const der = encodeName(dn);
  const rdns = readChildren(readSingle(der), Tag.SEQUENCE);
  t.equal(rdns.length, 6);
  t.ok(
    rdns.every((rdn) => readChildren(rdn, Tag.SET).length === 1),
    'single-valued RDNs',
  );
  const [, countryValue] = readChildren(readChildren(rdns[0])[0]);
  t.equal(countryValue.tag, Tag.PRINTABLE_STRING);
  t.same(decodeName(der), dn);
  t.same(decodeName(encodeName({ common_name: 'only', state: null, country: undefined })), {
    common_name: 'only',
    country: null,
    state: null,
    locality: null,
    organization: null,
    organizational_unit: null,
  });
  t.same(encodeName({}), new Uint8Array([0x30, 0]));
  t.match(await appErrorOf(() => decodeName(new Uint8Array([0x30, 0x03, 0x31, 0x01]))), { code: 'PCA.00020001' });
});

t.test('validateDistinguishedName (§5.1 / §5.2)', async (t) => {
  const full = { common_name: 'a*.b c-d_e,f', country: 'cn', state: '浙江', locality: 'x', organization: 'o', organizational_unit: 'u' };
  t.same(validateDistinguishedName(full, { requireAll: true }), { ...full, country: 'CN' }, 'the country upper case, the rest as given');
  t.same(validateDistinguishedName({ common_name: 'leaf', state: null }, { requireAll: false }), { common_name: 'leaf', state: null });
  const invalid: [string, unknown, boolean, RegExp][] = [
    ['missing field', { ...full, locality: undefined }, true, /distinguished_name.locality is required/],
    ['missing CN', { country: 'CN' }, false, /common_name is required/],
    ['three-letter country', { ...full, country: 'CHN' }, true, /distinguished_name.country must be exactly two letters/],
    ['digit in country', { ...full, country: 'C1' }, true, /country/],
    ['long CN', { ...full, common_name: 'x'.repeat(65) }, true, /common_name must be 1-64/],
    ['empty O', { ...full, organization: '' }, true, /organization must be 1-64/],
    ['* outside CN', { ...full, organization: 'a*' }, true, /organization/],
    ['slash', { ...full, common_name: 'a/b' }, false, /common_name/],
    ['long state', { ...full, state: 's'.repeat(129) }, true, /state must be 1-128/],
    ['not a string', { ...full, locality: 5 }, true, /locality/],
    ['not an object', 'CN=x', true, /must be an object/],
  ];
  for (const [name, dn, requireAll, message] of invalid) {
    t.match(await appErrorOf(() => validateDistinguishedName(dn, { requireAll })), { code: 'PCA.00020101', message }, name);
  }
  t.same(validateDistinguishedName({ ...full, state: 's'.repeat(128) }, { requireAll: true }).state, 's'.repeat(128));
});

t.test('validateSubjectAltNames (§5.5)', async (t) => {
  const valid = [
    { type: 'DNS', value: 'a.example.com' },
    { type: 'DNS', value: '*.example.com' },
    { type: 'DNS', value: `${'a'.repeat(63)}.com` },
    { type: 'IP', value: '192.168.0.1' },
    { type: 'IP', value: '2001:db8::1' },
    { type: 'EMAIL', value: 'first.last+tag@example.com' },
    { type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/default' },
    { type: 'URI', value: 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66' },
  ];
  t.same(validateSubjectAltNames(valid).names, valid);
  // URIs strict readers take as written: IP literals as hosts, valid escapes in the path, query and fragment.
  const validUris = [
    'https://[2001:db8::1]/',
    'https://10.1.2.3/x',
    'https://svc.example.com:8443/a%41b?q=%41&r=1#%41',
    'mailto:ops@example.com',
    'spiffe://cluster.local/ns/x/sa/y',
    'file:///etc/hosts',
  ].map((value) => ({ type: 'URI', value }));
  t.same(validateSubjectAltNames(validUris).names, validUris);
  const invalid: [string, unknown, string][] = [
    ['wildcard not leftmost', { type: 'DNS', value: 'a.*.com' }, 'PCA.00020110'],
    ['partial wildcard', { type: 'DNS', value: 'a*.example.com' }, 'PCA.00020110'],
    ['bare wildcard', { type: 'DNS', value: '*' }, 'PCA.00020110'],
    ['label of 64', { type: 'DNS', value: `${'a'.repeat(64)}.com` }, 'PCA.00020110'],
    ['254 characters', { type: 'DNS', value: `${'a.'.repeat(126)}ab` }, 'PCA.00020110'],
    ['empty label', { type: 'DNS', value: 'a..com' }, 'PCA.00020110'],
    ['space', { type: 'DNS', value: 'a b.com' }, 'PCA.00020110'],
    ['hyphen edge', { type: 'DNS', value: '-a.com' }, 'PCA.00020110'],
    ['IPv4 octet 256', { type: 'IP', value: '256.1.1.1' }, 'PCA.00020111'],
    ['IPv4 leading zero', { type: 'IP', value: '01.2.3.4' }, 'PCA.00020111'],
    ['IPv4 short', { type: 'IP', value: '1.2.3' }, 'PCA.00020111'],
    ['IPv6 zone', { type: 'IP', value: 'fe80::1%eth0' }, 'PCA.00020111'],
    ['IPv6 two ::', { type: 'IP', value: '1::2::3' }, 'PCA.00020111'],
    ['IPv6 nine groups', { type: 'IP', value: '1:2:3:4:5:6:7:8:9' }, 'PCA.00020111'],
    ['a name as IP', { type: 'IP', value: 'localhost' }, 'PCA.00020111'],
    ['IPv4-mapped IPv6', { type: 'IP', value: '::ffff:10.0.0.1' }, 'PCA.00020111'],
    ['email without domain', { type: 'EMAIL', value: 'a@' }, 'PCA.00020001'],
    ['email with space', { type: 'EMAIL', value: 'a b@example.com' }, 'PCA.00020001'],
    ['relative URI', { type: 'URI', value: 'path/only' }, 'PCA.00020001'],
    ['URI with space', { type: 'URI', value: 'http://a b/' }, 'PCA.00020001'],
    // Go's crypto/x509 refuses the whole certificate over these ("invalid URL escape", "invalid domain").
    ['URI escape not hex', { type: 'URI', value: 'https://svc.example.com/%zz' }, 'PCA.00020001'],
    ['URI lone percent', { type: 'URI', value: 'https://svc.example.com/%' }, 'PCA.00020001'],
    ['URI short escape', { type: 'URI', value: 'https://svc.example.com/a%2' }, 'PCA.00020001'],
    ['URI bad escape in fragment', { type: 'URI', value: 'spiffe://cluster.local/ns/x/sa/y#%zz' }, 'PCA.00020001'],
    ['URI bad escape in query', { type: 'URI', value: 'https://svc.example.com/?a=%g1' }, 'PCA.00020001'],
    ['URI escape in host', { type: 'URI', value: 'http://ex%41mple.com/' }, 'PCA.00020001'],
    ['URI host trailing dot', { type: 'URI', value: 'https://svc.example.com./x' }, 'PCA.00020001'],
    ['URI host empty label', { type: 'URI', value: 'https://a..b/x' }, 'PCA.00020001'],
    ['URI IP host trailing dot', { type: 'URI', value: 'http://1.2.3.4./' }, 'PCA.00020001'],
    ['URI IPv6 zone', { type: 'URI', value: 'https://[fe80::1%25eth0]/' }, 'PCA.00020001'],
    ['URI IPv4 in brackets', { type: 'URI', value: 'https://[10.1.2.3]/' }, 'PCA.00020001'],
    ['URI port not digits', { type: 'URI', value: 'https://svc.example.com:x/' }, 'PCA.00020001'],
    ['URI character outside RFC 3986', { type: 'URI', value: 'https://svc.example.com/{x}' }, 'PCA.00020001'],
    ['unknown type', { type: 'RID', value: '1.2.3' }, 'PCA.00020112'],
    ['lower-case type', { type: 'dns', value: 'a.com' }, 'PCA.00020112'],
    ['value not a string', { type: 'DNS', value: 5 }, 'PCA.00020001'],
  ];
  for (const [name, san, code] of invalid) {
    t.match(await appErrorOf(() => validateSubjectAltNames([valid[0], san])), { code, message: /\[1\]/ }, name);
  }
  const many = Array.from({ length: 21 }, (_, i) => ({ type: 'DNS', value: `h${i}.example.com` }));
  t.match(await appErrorOf(() => validateSubjectAltNames(many)), { code: 'PCA.00020001', message: /at most 20/ });
  t.equal(validateSubjectAltNames(many.slice(0, 20)).names.length, 20);
  t.same(
    validateSubjectAltNames([...many.slice(0, 20), { type: 'DNS', value: 'H3.Example.com' }]).names,
    many.slice(0, 20),
    'the cap counts distinct names: a repeat is dropped, not counted',
  );
  t.match(await appErrorOf(() => validateSubjectAltNames('a.com')), { code: 'PCA.00020001' });
});

t.test('IP addresses: 4 or 16 octets, RFC 5952 text', async (t) => {
  t.same(parseIp('10.1.2.3'), new Uint8Array([10, 1, 2, 3]));
  t.equal(parseIp('::1')?.length, 16);
  for (const [input, canonical] of [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:1:1:1:1:1:1', '1:0:1:1:1:1:1:1'],
    ['fe80::', 'fe80::'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ]) {
    t.equal(formatIp(parseIp(input)!), canonical, input);
  }
});

t.test('embeddedIpv4: the IPv4 address an IPv6 one carries (mapped, NAT64, compatible), else null', async (t) => {
  const embedded = (address: string) => embeddedIpv4(parseIp(address)!);
  t.same(embedded('::ffff:1.2.3.4'), new Uint8Array([1, 2, 3, 4]), 'IPv4-mapped');
  t.same(embedded('64:ff9b::169.254.169.254'), new Uint8Array([169, 254, 169, 254]), 'NAT64 well-known prefix');
  t.same(embedded('::10.0.0.1'), new Uint8Array([10, 0, 0, 1]), 'IPv4-compatible');
  t.equal(embedded('::1'), null, '::1 is loopback, not 0.0.0.1');
  t.equal(embedded('::'), null, 'unspecified');
  t.equal(embedded('2001:db8::102:304'), null, 'a plain IPv6 address');
  t.equal(embedded('64:ff9b:1::1.2.3.4'), null, 'a local-use NAT64 prefix is not the well-known one');
  t.equal(embedded('1.2.3.4'), null, 'an IPv4 address carries none');
});

t.test('decodeKeyUsage: padding (unused) bits are not usages, as openssl and Go read them', async (t) => {
  const bits = (...octets: number[]) => decodeKeyUsage(new Uint8Array([0x03, octets.length, ...octets]));
  t.same(bits(0x03, 0x8f), ['digitalSignature', 'keyAgreement'], "0x8F with 3 unused bits: openssl's Digital Signature, Key Agreement");
  t.same(bits(0x03, 0x87), ['digitalSignature'], 'keyCertSign and cRLSign set only in padding are not granted');
  t.same(bits(0x07, 0x80, 0xff), ['digitalSignature', 'decipherOnly'], 'the ninth bit, decipherOnly, past the first octet');
  t.same(bits(0x00, 0x06), ['keyCertSign', 'cRLSign']);
  t.same(bits(0x00), [], 'no bits');
  for (const octets of [[0x03], [0x08, 0xff], []]) {
    t.throws(() => bits(...octets), { message: 'bad KeyUsage' }, `malformed: ${JSON.stringify(octets)}`);
  }
});

t.test('validateCustomExtensions and validateKeyUsages (§5.6)', async (t) => {
  t.same(validateCustomExtensions({ object_identifier: '1.3.6.1.4.1.2011.4.99', value: 'v' }), [
    { oid: '1.3.6.1.4.1.2011.4.99', value: 'v' },
  ]);
  t.same(
    validateCustomExtensions({ object_identifier: '1.3.6.1.4.1.2011.4.99' }),
    [{ oid: '1.3.6.1.4.1.2011.4.99', value: '' }],
    'an OID alone: empty value',
  );
  for (const absent of [undefined, null, {}, { value: '' }, { object_identifier: null, value: null }]) {
    t.same(validateCustomExtensions(absent), [], `${JSON.stringify(absent)}: no extension`);
  }
  for (const [name, extension] of [
    ['standard extension', { object_identifier: '2.5.29.17', value: 'x' }],
    ['2.5.29 itself', { object_identifier: '2.5.29', value: 'x' }],
    ['not dotted', { object_identifier: 'abc', value: 'x' }],
    ['second arc above 39', { object_identifier: '1.40.1', value: 'x' }],
    ['leading zero arc', { object_identifier: '1.3.06', value: 'x' }],
    ['value not a string', { object_identifier: '1.2.3', value: 1 }],
    ['not an object', 'x'],
    ['a value without an OID', { value: 'x' }],
    // Python's cryptography parses Admissions and refuses the certificate when it holds a UTF8String.
    ['Admissions', { object_identifier: '1.3.36.8.3.3', value: 'x' }],
    // openssl names these and cannot decode a UTF8String under them.
    ['OCSP Nonce', { object_identifier: '1.3.6.1.5.5.7.48.1.2', value: 'x' }],
    ['Strong Extranet ID', { object_identifier: '1.3.101.1.4.1', value: 'x' }],
    ['S/MIME Capabilities', { object_identifier: '1.2.840.113549.1.9.15', value: 'x' }],
    ['Microsoft SID extension', { object_identifier: '1.3.6.1.4.1.311.25.2', value: 'x' }],
  ] as const) {
    t.match(await appErrorOf(() => validateCustomExtensions(extension)), { code: 'PCA.00020001' }, name);
  }
  t.same(validateKeyUsages(['digitalSignature', 'keyAgreement', 'digitalSignature']), ['digitalSignature', 'keyAgreement']);
  t.match(await appErrorOf(() => validateKeyUsages(['digitalSignature', 'signing'])), { code: 'PCA.00020001' });
});

t.test('DER helpers: ECDSA signature forms, times', async (t) => {
  for (const bits of [256, 384, 521]) {
    const size = Math.ceil(bits / 8);
    for (const raw of [
      Uint8Array.from({ length: 2 * size }, (_, i) => (i * 91 + 7) & 0xff),
      Uint8Array.from({ length: 2 * size }, (_, i) => (i % size < 3 ? 0 : 0xff)), // leading zeros, then high bit
    ]) {
      const der = ecdsaRawToDer(raw, bits);
      const [r, s] = readChildren(readSingle(der), Tag.SEQUENCE);
      t.equal(r.tag, Tag.INTEGER);
      t.equal(s.tag, Tag.INTEGER);
      t.same(ecdsaDerToRaw(der, bits), raw, `P-${bits} round trip`);
    }
  }
  t.throws(() => ecdsaRawToDer(new Uint8Array(63), 256));
  t.equal(ecdsaDerToRaw(new Uint8Array([0x30, 0]), 256), null);

  for (const iso of ['2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '1999-06-01T12:00:00Z']) {
    const encoded = time(new Date(iso));
    t.equal(encoded[0], iso < '2050' ? Tag.UTC_TIME : Tag.GENERALIZED_TIME, iso);
    t.equal(readTime(readSingle(encoded)).toISOString(), iso.replace('Z', '.000Z'));
  }
});

t.test('keyAlgorithmOfSpki', async (t) => {
  for (const alg of ['RSA2048', 'EC256', 'EC384', 'EC521'] as const) {
    t.equal(keyAlgorithmOfSpki((await generateTestKey(alg)).spki), alg);
  }
  const work = await scratch('keys');
  await openssl(['genpkey', '-algorithm', 'X25519', '-out', work.file('x.pem')]);
  await openssl(['pkey', '-in', work.file('x.pem'), '-pubout', '-outform', 'DER', '-out', work.file('x.der')]);
  t.match(await appErrorOf(() => keyAlgorithmOfSpki(new Uint8Array(0))), { code: 'PCA.00020001' });
  t.match(await appErrorOf(async () => keyAlgorithmOfSpki(new Uint8Array(await work.read('x.der')))), {
    code: 'PCA.00020102',
    message: /X25519/,
  });
});
