/**
 * Certificate content a relying party reads as written: `customized_extension` refuses every OID whose syntax is
 * defined elsewhere (openssl names them and then cannot decode a UTF8String under them), and neither the EKUs nor
 * the SANs of a certificate repeat themselves, whether they come from the request body or from a CSR. Certificates
 * are read by openssl.
 */
import t, { type Test } from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client, type Json } from '../ca/support.ts';
import { appErrorOf } from '../x509/support.ts';
import { KEY_ARGS, certificateText, opensslCsr, scratch } from './support.ts';
import { csrExtendedKeyUsages } from '../../src/services/certificates/certificate-rules.ts';
import { validateCustomExtensions, validateSubjectAltNames } from '../../src/services/request-fields.ts';
import { EXTENDED_KEY_USAGE_OIDS } from '../../src/x509/extensions.ts';

const CERT = '/v1/private-certificates';
const validity = { type: 'DAY', value: 30 };

const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const dir = await scratch('extension-hygiene');

const rootId = await api.root({ distinguished_name: { ...DN, common_name: 'hygiene-root' } });
const issuerId = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'hygiene-sub' } });

const ENTITY = { distinguished_name: { common_name: 'hygiene' }, validity, key_algorithm: 'EC256' };
const serverMade = (overrides: Json, issuer = issuerId) => api.call('POST', CERT, { issuer_id: issuer, ...ENTITY, ...overrides });

/** Create-by-CSR of an openssl-made CSR with `subject` and one `-addext`. */
async function byCsr(name: string, subject: string, addext: string, issuer = issuerId) {
  const { csr } = await opensslCsr(dir, name, [...KEY_ARGS.p256], ['-subj', subject, '-addext', addext]);
  return api.call('POST', `${CERT}/csr`, { issuer_id: issuer, csr, validity });
}

async function textOf(response: { status: number; body: Json }): Promise<string> {
  if (response.status !== 200) return '(not issued)';
  const exported = await api.call('POST', `${CERT}/${response.body.certificate_id}/export`, { type: 'OTHER' });
  return certificateText(dir, exported.body.certificate);
}

/** The value of one extension in openssl's text dump, on one line. */
function extensionLine(text: string, header: string): string {
  const match = new RegExp(`${header}:(?: critical)? *\\n\\s+(.*)\\n`).exec(text);
  return match ? match[1].trim() : '(absent)';
}

/** Issues by CSR (200 asserted) and gives openssl's line for the extension `header`. */
async function csrExtensionLine(t: Test, name: string, subject: string, addext: string, header: string): Promise<string> {
  const issued = await byCsr(name, subject, addext);
  t.equal(issued.status, 200, `${name}: ${JSON.stringify(issued.body)}`);
  return extensionLine(await textOf(issued), header);
}

t.test('customized_extension: OIDs whose syntax is defined elsewhere get 400, their neighbours stay open', async (t) => {
  const refused = [
    // The OCSP extension arc, not only OCSP No Check (.5).
    ['1.3.6.1.5.5.7.48.1.2', /OCSP extension/], // OCSP Nonce
    ['1.3.6.1.5.5.7.48.1.3', /OCSP extension/], // OCSP CRL ID
    ['1.3.6.1.5.5.7.48.1.4', /OCSP extension/], // Acceptable OCSP Responses
    ['1.3.6.1.5.5.7.48.1.6', /OCSP extension/], // OCSP Archive Cutoff
    ['1.3.6.1.5.5.7.48.1.7', /OCSP extension/], // OCSP Service Locator
    ['1.3.6.1.5.5.7.48.1.5', /OCSP No Check/],
    ['1.3.101.1.4.1', /Strong Extranet ID/],
    ['1.2.840.113549.1.9.15', /S\/MIME Capabilities/],
    ['1.3.6.1.4.1.311.25.2', /Microsoft NTDS extension/], // the SID extension AD strong certificate mapping reads
    ['1.3.6.1.4.1.311.25.1', /Microsoft NTDS extension/],
    ['1.2.643.100.112', /issuerSignTool/],
    ['2.23.42.7.0', /SET certificate extension/],
    // Already refused; every extension openssl 3.0 decodes by name outside 2.5.29 but subjectSignTool.
    ['1.3.6.1.5.5.7.1.24', /PKIX certificate extension/],
    ['1.3.6.1.5.5.7.1.14', /PKIX certificate extension/],
    ['1.3.6.1.4.1.11129.2.4.2', /Certificate Transparency/],
    ['1.3.6.1.4.1.11129.2.4.3', /Certificate Transparency/],
    ['1.3.6.1.4.1.11129.2.4.5', /Certificate Transparency/],
    ['2.16.840.1.113730.1.13', /Netscape/],
    ['1.3.36.8.3.3', /Admissions/],
    ['2.5.29.37', /standard extension/],
  ] as const;
  for (const [oid, what] of refused) {
    assertError(t, await serverMade({ customized_extension: { object_identifier: oid, value: 'x' } }), 400, 'PCA.00020001', what);
    t.match(
      await appErrorOf(() => validateCustomExtensions({ object_identifier: oid, value: 'x' })),
      { code: 'PCA.00020001', message: new RegExp(`${oid.replaceAll('.', '\\.')}|2\\.5\\.29`) },
      `${oid} refused by the validator`,
    );
  }
  // subjectSignTool is a UTF8String: openssl decodes what the service writes. The arcs next to refused ones stay open.
  const signTool = await serverMade({ customized_extension: { object_identifier: '1.2.643.100.111', value: 'CryptoTool 5' } });
  t.equal(signTool.status, 200, JSON.stringify(signTool.body));
  t.equal(extensionLine(await textOf(signTool), 'Signing Tool of Subject'), 'CryptoTool 5', 'openssl decodes subjectSignTool');
  for (const oid of ['1.3.101.1.4.2', '1.3.6.1.4.1.311.26.1', '1.2.643.100.114', '1.3.6.1.4.1.2011.4.99']) {
    const issued = await serverMade({ customized_extension: { object_identifier: oid, value: 'label' } });
    t.equal(issued.status, 200, `${oid}: ${JSON.stringify(issued.body)}`);
    t.match(await textOf(issued), new RegExp(`${oid.replaceAll('.', '\\.')}: \\n\\s+\\.\\.label`), `${oid}: openssl shows it unnamed`);
  }
});

t.test('EKUs: a CSR repeating a purpose gets it once, in first-seen order', async (t) => {
  const SERVER = EXTENDED_KEY_USAGE_OIDS.server_auth;
  const CLIENT = EXTENDED_KEY_USAGE_OIDS.client_auth;
  t.same(csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: [SERVER, SERVER, CLIENT] }), [SERVER, CLIENT]);
  t.same(csrExtendedKeyUsages('ENTITY_CERT', { extendedKeyUsages: [CLIENT, SERVER, CLIENT, SERVER] }), [CLIENT, SERVER]);
  t.same(csrExtendedKeyUsages('INTERMEDIATE_CA', { extendedKeyUsages: ['1.2.3', '1.2.3'] }), ['1.2.3']);

  const EKU = 'X509v3 Extended Key Usage';
  const repeat = await csrExtensionLine(t, 'eku-repeat', '/CN=eku.example.com', 'extendedKeyUsage=serverAuth,serverAuth,clientAuth', EKU);
  t.equal(repeat, 'TLS Web Server Authentication, TLS Web Client Authentication');
  const reversed = await csrExtensionLine(
    t,
    'eku-reversed',
    '/CN=eku2.example.com',
    'extendedKeyUsage=clientAuth,serverAuth,clientAuth',
    EKU,
  );
  t.equal(reversed, 'TLS Web Client Authentication, TLS Web Server Authentication');
  // The body's flags are a table: each purpose at most once, whatever it says.
  const flags = await serverMade({ extended_key_usage: { server_auth: true, client_auth: true } });
  t.equal(extensionLine(await textOf(flags), EKU), 'TLS Web Server Authentication, TLS Web Client Authentication');
});

t.test('SANs: a name given twice (as RFC 5280 §7 compares them) is written once, in the form first given', async (t) => {
  const dns = (value: string) => ({ type: 'DNS', value });
  const ip = (value: string) => ({ type: 'IP', value });
  const email = (value: string) => ({ type: 'EMAIL', value });
  const uri = (value: string) => ({ type: 'URI', value });
  const sans = [
    dns('a.example.com'),
    dns('a.example.com'),
    dns('A.Example.COM'),
    dns('*.example.com'),
    ip('10.0.0.1'),
    ip('10.0.0.1'),
    ip('2001:db8::1'),
    ip('2001:DB8:0:0:0:0:0:1'),
    email('Ops@Example.com'),
    email('Ops@example.COM'),
    email('ops@example.com'),
    uri('HTTPS://Svc.Example.com:8443/A'),
    uri('https://svc.example.com:8443/A'),
    uri('https://svc.example.com:8443/a'),
    uri('spiffe://user@cluster.local/ns/a'),
    uri('spiffe://User@cluster.local/ns/a'),
    // An IP-literal host compares by its octets, however it is spelled.
    uri('https://[::1]/'),
    uri('https://[0::1]/'),
    uri('https://[0:0:0:0:0:0:0:1]/'),
    uri('https://[::FFFF:10.0.0.1]:8443/x'),
    uri('https://[::ffff:a00:1]:8443/x'),
    uri('spiffe://id@[2001:DB8::1]/ns/a'),
    uri('spiffe://id@[2001:db8:0::1]/ns/a'),
    // Still other names: another port (an empty one too), userinfo or address family.
    uri('https://[::1]:443/'),
    uri('https://[::1]:/'),
    uri('spiffe://ID@[2001:db8::1]/ns/a'),
    uri('https://10.0.0.1:8443/x'),
  ];
  const issued = await serverMade({ subject_alternative_names: sans });
  t.equal(issued.status, 200, JSON.stringify(issued.body));
  t.equal(
    extensionLine(await textOf(issued), 'X509v3 Subject Alternative Name'),
    'DNS:a.example.com, DNS:*.example.com, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1, email:Ops@Example.com, ' +
      'email:ops@example.com, URI:HTTPS://Svc.Example.com:8443/A, URI:https://svc.example.com:8443/a, ' +
      'URI:spiffe://user@cluster.local/ns/a, URI:spiffe://User@cluster.local/ns/a, URI:https://[::1]/, ' +
      'URI:https://[::FFFF:10.0.0.1]:8443/x, URI:spiffe://id@[2001:DB8::1]/ns/a, URI:https://[::1]:443/, URI:https://[::1]:/, ' +
      'URI:spiffe://ID@[2001:db8::1]/ns/a, URI:https://10.0.0.1:8443/x',
    'openssl reads each name once',
  );

  const fromCsr = await csrExtensionLine(
    t,
    'san-repeat',
    '/CN=a.example.com',
    'subjectAltName=DNS:a.example.com,DNS:A.example.com,IP:10.0.0.1,IP:10.0.0.1,DNS:b.example.com,IP:2001:db8::1,IP:2001:db8:0::1,' +
      'URI:https://[::1]/,URI:https://[0::1]/',
    'X509v3 Subject Alternative Name',
  );
  t.equal(
    fromCsr,
    'DNS:a.example.com, IP Address:10.0.0.1, DNS:b.example.com, IP Address:2001:DB8:0:0:0:0:0:1, URI:https://[::1]/',
    "a CSR's repeated names once too",
  );

  const { names, indices } = validateSubjectAltNames(sans);
  t.same(indices, [0, 3, 4, 6, 8, 10, 11, 13, 14, 15, 16, 19, 21, 23, 24, 25, 26], 'each name once, at its first index');
  t.same(
    names,
    indices?.map((index) => sans[index]),
    'in the form first given',
  );
});

t.test('SANs: the cap of 20 counts distinct names; refusals name the first occurrence', async (t) => {
  const hosts = Array.from({ length: 20 }, (_, i) => ({ type: 'DNS', value: `h${i}.example.com` }));
  const repeated = await serverMade({ subject_alternative_names: [...hosts, { type: 'DNS', value: 'H0.example.com' }] });
  t.equal(repeated.status, 200, `21 entries, 20 names: ${JSON.stringify(repeated.body)}`);
  t.equal((extensionLine(await textOf(repeated), 'X509v3 Subject Alternative Name').match(/DNS:/g) ?? []).length, 20);
  assertError(
    t,
    await serverMade({ subject_alternative_names: [...hosts, { type: 'DNS', value: 'h20.example.com' }] }),
    400,
    'PCA.00020001',
    /at most 20/,
  );
  const csrNames = [...hosts.map((h) => `DNS:${h.value}`), 'DNS:h1.example.com'].join(',');
  const csrRepeated = await byCsr('san-cap', '/CN=h0.example.com', `subjectAltName=${csrNames}`);
  t.equal(csrRepeated.status, 200, `a CSR with 21 entries, 20 names: ${JSON.stringify(csrRepeated.body)}`);
  t.match(await appErrorOf(() => validateSubjectAltNames([...hosts, { type: 'IP', value: '10.0.0.1' }])), {
    code: 'PCA.00020001',
    message: /at most 20/,
  });
  // A malformed repeat is still refused, by its own index.
  t.match(await appErrorOf(() => validateSubjectAltNames([hosts[0], hosts[0], { type: 'IP', value: '10.0.0.01' }])), {
    code: 'PCA.00020111',
    message: /subject_alternative_names\[2\]/,
  });

  // A policy refusal names the entry in the request, not its place among the distinct names.
  const policed = await api.subordinate(rootId, { distinguished_name: { ...DN, common_name: 'hygiene-policed' } });
  const put = await api.call('PUT', `${CA}/${policed}/issuance-policy`, { allowed: { dns: ['*.example.internal'] } });
  t.equal(put.status, 200, JSON.stringify(put.body));
  assertError(
    t,
    await serverMade(
      {
        subject_alternative_names: [
          { type: 'DNS', value: 'a.example.internal' },
          { type: 'DNS', value: 'A.example.internal' },
          { type: 'DNS', value: 'evil.example' },
        ],
      },
      policed,
    ),
    400,
    'PCA.00020001',
    /subject_alternative_names\[2\] DNS name 'evil\.example' is not allowed/,
  );
  assertError(
    t,
    await byCsr(
      'san-policy',
      '/CN=a.example.internal',
      'subjectAltName=DNS:a.example.internal,DNS:a.example.internal,DNS:evil.example',
      policed,
    ),
    400,
    'PCA.00020001',
    /csr subjectAltName\[2\] DNS name 'evil\.example' is not allowed/,
  );
});
