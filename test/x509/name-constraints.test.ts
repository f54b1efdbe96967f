/**
 * RFC 5280 name constraints (src/x509/name-constraints.ts): what the service writes, read back by openssl and by
 * our decoder; what openssl writes into CSRs, read by ours; refusals of forms the service cannot honour; and
 * openssl verify enforcing the constraints the service wrote (a leaf outside them fails with its name-constraint
 * error). Mutated bytes never escape as anything but a 400.
 */
import t from 'tap';
import { buildCertificate, parseCertificate, randomSerial } from '../../src/x509/certificate.ts';
import { csrNameConstraints, parseCsr } from '../../src/x509/csr.ts';
import { parsingUntrusted } from '../../src/x509/der-reader.ts';
import { validateNameConstraints } from '../../src/services/request-fields.ts';
import { decodeNameConstraints, nameConstraintsValue, type NameConstraints } from '../../src/x509/name-constraints.ts';
import { encodeName } from '../../src/x509/name.ts';
import { toPem } from '../../src/x509/pem.ts';
import { subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { fuzzer } from '../helpers/fuzz.ts';
import { appErrorOf, generateTestKey, openssl, scratch } from './support.ts';

const dir = await scratch('name-constraints');
const now = Date.now();

const MESH = validateNameConstraints({
  permitted: { dns: ['.cluster.local'], uri: ['cluster.local'], ip: ['10.0.0.0/8', 'fd00::/8'], email: ['example.com'] },
  excluded: { dns: ['kube-system.svc.cluster.local'] },
})!;

t.test('the API field is validated and normalised, naming the offending entry', async (t) => {
  t.same(validateNameConstraints({ permitted: { dns: ['Bücher.Example', '.CLUSTER.local'] } })?.permitted.dns, [
    'xn--bcher-kva.example',
    '.cluster.local',
  ]);
  t.same(validateNameConstraints({ permitted: { ip: ['FD00:0::/8', '192.168.0.0/16'] } })?.permitted.ip, ['fd00::/8', '192.168.0.0/16']);
  t.same(
    validateNameConstraints({
      permitted: { dns: ['123.example', '1a.example'], uri: ['10-1.example'], email: ['first.last+tag@example.com'] },
    })?.permitted,
    { dns: ['123.example', '1a.example'], ip: [], uri: ['10-1.example'], email: ['first.last+tag@example.com'] },
    'numeric labels in a name, and dot-atom local parts, are kept as written',
  );
  t.equal(validateNameConstraints({ permitted: {}, excluded: { dns: [] } }), null, 'constraining nothing is no constraint');
  t.equal(validateNameConstraints(undefined), null);
  const cases: [unknown, RegExp][] = [
    [{ permitted: { uri: ['spiffe://cluster.local'] } }, /name_constraints\.permitted\.uri\[0\] must be a host .* not a URI/],
    // Go refuses a CA certificate with a URI subtree that is an address ("cannot be IP address").
    [{ permitted: { uri: ['10.0.0.1'] } }, /permitted\.uri\[0\] must be a host name .* not a URI or an IP address/],
    // Numeric names are refused, not rewritten (WHATWG reads them as IPv4: 10.1 would be written as 10.0.0.1).
    [{ permitted: { uri: ['10.1'] } }, /permitted\.uri\[0\] must be a host name/],
    [{ permitted: { dns: ['123'] } }, /permitted\.dns\[0\] must be a domain/],
    [{ permitted: { dns: ['.10.0.0.1'] } }, /permitted\.dns\[0\] must be a domain/],
    [{ excluded: { dns: ['0x7f'] } }, /excluded\.dns\[0\] must be a domain/],
    [{ permitted: { email: ['a@10.1'] } }, /permitted\.email\[0\]/],
    // Go refuses a CA certificate with a mailbox it cannot parse: the local part is an RFC 5321 dot-atom.
    [{ permitted: { email: ['a..b@example.com'] } }, /permitted\.email\[0\] must be a mailbox \(a dot-atom local part\)/],
    [{ permitted: { email: ['.a@example.com'] } }, /permitted\.email\[0\] must be a mailbox/],
    [{ excluded: { email: ['a(b@example.com'] } }, /excluded\.email\[0\] must be a mailbox/],
    [{ permitted: { ip: ['10.1.0.0/8'] } }, /permitted\.ip\[0\] must be a network in CIDR form .*host bits zero/],
    [{ permitted: { dns: ['*.example.com'] } }, /permitted\.dns\[0\]/],
    [{ permitted: { dns: ['a..b'] } }, /permitted\.dns\[0\]/],
    [{ excluded: { email: ['@example.com'] } }, /excluded\.email\[0\]/],
    [{ permitted: { directory: ['x'] } }, /name_constraints\.permitted\.directory is not a name type/],
    [{ allowed: {} }, /name_constraints\.allowed is unknown/],
    [{ permitted: { dns: 'example.com' } }, /permitted\.dns must be an array/],
    [[], /name_constraints must be an object/],
  ];
  for (const [input, message] of cases) {
    const error = await appErrorOf(() => validateNameConstraints(input));
    t.match(error, { statusCode: 400, code: 'PCA.00020001', message }, JSON.stringify(input));
  }
});

/** A self-signed CA certificate, valid for a day, carrying `nameConstraints`; with its key and subject. */
async function selfSignedCa(commonName: string, nameConstraints: NameConstraints) {
  const key = await generateTestKey('EC256');
  const subject = encodeName({ common_name: commonName });
  const der = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      spki: key.spki,
      hash: 'SHA256',
      basicConstraints: { ca: true },
      keyUsages: ['keyCertSign', 'cRLSign'],
      nameConstraints,
    },
    key.signer,
  );
  return { key, subject, der };
}

t.test('encoded per RFC 5280 §4.2.1.10: openssl shows them, critical; decoding gives them back', async (t) => {
  const { key, subject, der } = await selfSignedCa('constrained-root', MESH);
  const file = await dir.write('root.pem', toPem('CERTIFICATE', der));
  const text = (await openssl(['x509', '-in', file, '-noout', '-text'])).stdout;
  t.match(
    text,
    /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.cluster\.local\s+IP:10\.0\.0\.0\/255\.0\.0\.0\s+IP:FD00:0:0:0:0:0:0:0\/FF00:0:0:0:0:0:0:0\s+URI:cluster\.local\s+email:example\.com\s+Excluded:\s+DNS:kube-system\.svc\.cluster\.local/,
  );
  t.same(parseCertificate(der).nameConstraints, MESH, 'parsed back');
  t.same(decodeNameConstraints(nameConstraintsValue(MESH)), MESH);

  const entityDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject,
      issuer: subject,
      notBefore: new Date(now),
      notAfter: new Date(now + 1000),
      spki: key.spki,
      hash: 'SHA256',
      basicConstraints: { ca: false },
      keyUsages: ['digitalSignature'],
      subjectAltNames: [{ type: 'DNS', value: 'a.cluster.local' }],
      nameConstraints: MESH,
    },
    key.signer,
  );
  t.equal(parseCertificate(entityDer).nameConstraints, null, 'never written on an end-entity certificate');
});

t.test("openssl verify enforces what the service wrote: a leaf outside the constraints fails with openssl's error", async (t) => {
  const rootKey = await generateTestKey('EC256');
  const rootSubject = encodeName({ common_name: 'nc-root' });
  const rootDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: rootSubject,
      issuer: rootSubject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      spki: rootKey.spki,
      hash: 'SHA256',
      basicConstraints: { ca: true },
      keyUsages: ['keyCertSign', 'cRLSign'],
    },
    rootKey.signer,
  );
  const meshKey = await generateTestKey('EC256');
  const meshSubject = encodeName({ common_name: 'mesh-ca' });
  const meshDer = await buildCertificate(
    {
      serialNumber: randomSerial(),
      subject: meshSubject,
      issuer: rootSubject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
      spki: meshKey.spki,
      hash: 'SHA256',
      basicConstraints: { ca: true, pathLength: 0 },
      keyUsages: ['keyCertSign', 'cRLSign'],
      authorityKeyIdentifier: subjectKeyIdentifier(rootKey.spki),
      nameConstraints: MESH,
    },
    rootKey.signer,
  );
  const rootFile = await dir.write('verify-root.pem', toPem('CERTIFICATE', rootDer));
  const meshFile = await dir.write('verify-mesh.pem', toPem('CERTIFICATE', meshDer));
  const leafKey = await generateTestKey('EC256');
  const leaf = async (name: string, san: { type: 'DNS' | 'URI' | 'IP'; value: string }) => {
    const der = await buildCertificate(
      {
        serialNumber: randomSerial(),
        subject: encodeName({ organization: 'cluster.local' }),
        issuer: meshSubject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
        spki: leafKey.spki,
        hash: 'SHA256',
        basicConstraints: { ca: false },
        keyUsages: ['digitalSignature'],
        subjectAltNames: [san],
        authorityKeyIdentifier: subjectKeyIdentifier(meshKey.spki),
      },
      meshKey.signer,
    );
    return openssl(['verify', '-CAfile', rootFile, '-untrusted', meshFile, await dir.write(`${name}.pem`, toPem('CERTIFICATE', der))]);
  };
  t.ok((await leaf('inside-uri', { type: 'URI', value: 'spiffe://cluster.local/ns/a/sa/b' })).ok, 'spiffe://cluster.local/… verifies');
  t.ok((await leaf('inside-dns', { type: 'DNS', value: 'web.default.svc.cluster.local' })).ok, 'a cluster.local DNS name verifies');
  t.ok((await leaf('inside-ip', { type: 'IP', value: '10.1.2.3' })).ok, 'an IP inside 10.0.0.0/8 verifies');
  const outside = await leaf('outside', { type: 'DNS', value: 'evil.example.com' });
  t.notOk(outside.ok);
  t.match(`${outside.stdout}${outside.stderr}`, /permitted subtree violation/, 'evil.example.com fails with a name constraints error');
  const excluded = await leaf('excluded', { type: 'DNS', value: 'kube-system.svc.cluster.local' });
  t.match(`${excluded.stdout}${excluded.stderr}`, /excluded subtree violation/);
});

t.test('a CSR made by openssl carries them to parseCsr; unsupported forms are refused, never dropped', async (t) => {
  const keyFile = dir.file('csr.key');
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
  const csrOf = async (name: string, constraints: string) => {
    const out = dir.file(`${name}.csr`);
    const made = await openssl([
      'req',
      '-new',
      '-key',
      keyFile,
      '-subj',
      '/CN=mesh-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      `nameConstraints=${constraints}`,
      '-out',
      out,
    ]);
    if (!made.ok) throw new Error(made.stderr);
    return (await dir.read(`${name}.csr`)).toString();
  };
  const mesh = await parseCsr(
    await csrOf(
      'mesh',
      'critical,permitted;DNS:.cluster.local,permitted;URI:cluster.local,permitted;IP:10.0.0.0/255.0.0.0,excluded;DNS:bad.cluster.local,excluded;email:.example.com',
    ),
  );
  t.same(mesh.nameConstraints, {
    permitted: { dns: ['.cluster.local'], ip: ['10.0.0.0/8'], uri: ['cluster.local'], email: [] },
    excluded: { dns: ['bad.cluster.local'], ip: [], uri: [], email: ['.example.com'] },
  });
  const single = await parseCsr(await csrOf('single', 'critical,permitted;DNS:x.example'));
  t.equal(single.nameConstraints?.permitted.dns[0], 'x.example');
  const otherNameCsr = await parseCsr(await csrOf('other-name', 'critical,permitted;DNS:.a.example,excluded;otherName:1.2.3.4;UTF8:x'));
  t.equal(otherNameCsr.nameConstraints, undefined, 'parsed: an entity certificate ignores them');
  t.match(otherNameCsr.unsupportedNameConstraints, /excluded otherName name constraints are not supported/);
  const otherName = await appErrorOf(async () =>
    csrNameConstraints(await parseCsr(await csrOf('other-name', 'critical,permitted;DNS:.a.example,excluded;otherName:1.2.3.4;UTF8:x'))),
  );
  t.match(otherName, { statusCode: 400, code: 'PCA.00020001', message: /excluded otherName name constraints are not supported/ });
  const uriAsUri = await appErrorOf(async () =>
    csrNameConstraints(await parseCsr(await csrOf('uri-uri', 'critical,permitted;URI:spiffe://cluster.local'))),
  );
  t.match(uriAsUri, { statusCode: 400, message: /permitted URI name constraint 'spiffe:\/\/cluster\.local' must be a host/ });
  const badMask = await appErrorOf(async () =>
    csrNameConstraints(await parseCsr(await csrOf('mask', 'critical,permitted;IP:10.0.0.0/255.0.255.0'))),
  );
  t.match(badMask, { statusCode: 400, message: /mask is not a prefix/ });
  // Subtrees that make Go refuse the CA certificate, or that would be rewritten, are refused in a CSR too.
  for (const [name, constraint, message] of [
    ['uri-ip', 'permitted;URI:10.0.0.1', /permitted URI name constraint '10\.0\.0\.1' must be a host name .* not a URI or an IP address/],
    ['uri-numeric', 'excluded;URI:10.1', /excluded URI name constraint '10\.1' must be a host name/],
    ['dns-numeric', 'permitted;DNS:123', /permitted DNS name constraint '123' must be a domain/],
    [
      'email-dots',
      'permitted;email:a..b@example.com',
      /permitted EMAIL name constraint 'a\.\.b@example\.com' must be a mailbox \(a dot-atom/,
    ],
    ['email-leading-dot', 'excluded;email:.a@example.com', /excluded EMAIL name constraint '\.a@example\.com' must be a mailbox/],
    ['email-paren', 'permitted;email:a(b@example.com', /permitted EMAIL name constraint 'a\(b@example\.com' must be a mailbox/],
  ] as const) {
    const refused = await appErrorOf(async () => csrNameConstraints(await parseCsr(await csrOf(name, `critical,${constraint}`))));
    t.match(refused, { statusCode: 400, code: 'PCA.00020001', message }, constraint);
  }
});

t.test('a signed certificate is read as the service once wrote it: CAs made before the stricter rules keep working', async (t) => {
  const older = {
    permitted: { dns: ['0.0.0.123'], ip: [], uri: ['10.0.0.1'], email: ['a..b@example.com'] },
    excluded: { dns: [], ip: [], uri: [], email: [] },
  };
  const { der } = await selfSignedCa('older-ca', older);
  t.same(parseCertificate(der).nameConstraints, older);
  t.match(await appErrorOf(() => parsingUntrusted('name constraints', () => decodeNameConstraints(nameConstraintsValue(older)))), {
    statusCode: 400,
    message: /permitted DNS name constraint '0\.0\.0\.123'/,
  });
});

t.test('mutated NameConstraints bytes never throw anything but a 400 (an X509Error the contract maps)', async (t) => {
  const { mutateBytes } = fuzzer(t, 0x2026_1202);
  const value = nameConstraintsValue(MESH);
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const error = await appErrorOf(() => parsingUntrusted('name constraints', () => decodeNameConstraints(mutateBytes(value))));
    const outcome = typeof error === 'string' ? (error === 'no error thrown' ? 'decoded' : error) : `${error.statusCode} ${error.code}`;
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  t.same(
    [...outcomes.keys()].filter((key) => key !== 'decoded' && key !== '400 PCA.00020001'),
    [],
    `outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`,
  );
});
