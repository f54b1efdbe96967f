// Fast unit tests of the ACME identifier rules (RFC 8555 §7.1.3, §7.3, §7.4): contacts, order identifiers, and
// whether a CSR names exactly an order's identifiers.
import t from 'tap';
import { MAX_CONTACTS, MAX_IDENTIFIERS, contacts, csrNamesMatch, orderIdentifiers } from '../../src/services/acme/acme-identifiers.ts';
import { AcmeProblem, problemOfAppError } from '../../src/services/acme/acme-problems.ts';
import { errors } from '../../src/errors.ts';
import { reverseDnsName } from '../../src/services/acme/challenge-validation.ts';
import type { SubjectAltName } from '../../src/x509/extensions.ts';

/** The ACME problem type and detail `fn` throws, or a string saying what else happened. */
function problemOf(fn: () => unknown): { type: string; detail: string } | string {
  try {
    fn();
    return 'no problem thrown';
  } catch (error) {
    if (!(error instanceof AcmeProblem)) return `not an AcmeProblem: ${String(error)}`;
    const { type, detail } = error.document();
    return { type, detail };
  }
}

t.test('contacts: up to ten mailto: URLs of one address each', async (t) => {
  t.same(contacts(undefined), []);
  t.same(contacts(['mailto:a@example.com', 'mailto:b@example.org']), ['mailto:a@example.com', 'mailto:b@example.org']);
  t.match(
    problemOf(() => contacts('mailto:a@example.com')),
    { type: /:malformed$/, detail: /at most 10 URLs/ },
  );
  t.match(
    problemOf(() => contacts(Array(MAX_CONTACTS + 1).fill('mailto:a@example.com'))),
    { type: /:malformed$/ },
  );
  t.same(contacts(Array(MAX_CONTACTS).fill('mailto:a@example.com')).length, MAX_CONTACTS);
  for (const bad of ['https://example.com', 'mailto:a@b.com,c@d.com', 'mailto:no-at', `mailto:${'a'.repeat(250)}@b.com`, 7]) {
    t.match(
      problemOf(() => contacts([bad])),
      { type: /:unsupportedContact$/ },
      String(bad),
    );
  }
});

t.test('orderIdentifiers: normalised, repeats dropped, 1-100', async (t) => {
  t.same(
    orderIdentifiers([
      { type: 'dns', value: 'WWW.Example.COM' },
      { type: 'dns', value: 'www.example.com' },
      { type: 'dns', value: '*.Bücher.example' },
      { type: 'ip', value: '2001:DB8:0:0:0:0:0:1' },
      { type: 'ip', value: '10.0.0.1' },
    ]),
    [
      { type: 'dns', value: 'www.example.com' },
      { type: 'dns', value: '*.xn--bcher-kva.example' },
      { type: 'ip', value: '2001:db8::1' },
      { type: 'ip', value: '10.0.0.1' },
    ],
  );
  t.match(
    problemOf(() => orderIdentifiers([])),
    { type: /:malformed$/, detail: 'identifiers must be an array of 1-100 identifiers' },
  );
  t.match(
    problemOf(() => orderIdentifiers(Array(MAX_IDENTIFIERS + 1).fill({ type: 'dns', value: 'a.example' }))),
    { type: /:malformed$/ },
  );
  t.equal(orderIdentifiers(Array(MAX_IDENTIFIERS).fill({ type: 'dns', value: 'a.example' })).length, 1);
  const refused: [unknown, RegExp, RegExp][] = [
    [{ type: 'dns' }, /:malformed$/, /identifiers\[0\] must be \{type, value\}/],
    [null, /:malformed$/, /must be \{type, value\}/],
    [{ type: 'ip', value: '10.0.0.256' }, /:malformed$/, /is not an IP address/],
    [{ type: 'ip', value: '::ffff:10.0.0.1' }, /:rejectedIdentifier$/, /is IPv4-mapped: ask for the IPv4 address itself/],
    [{ type: 'email', value: 'a@b.com' }, /:unsupportedIdentifier$/, /type email is not supported/],
    [{ type: 'dns', value: 'localhost' }, /:rejectedIdentifier$/, /is not a host name/],
    [{ type: 'dns', value: 'a.*.example' }, /:rejectedIdentifier$/, /is not a host name/],
    [{ type: 'dns', value: '*.*.example' }, /:rejectedIdentifier$/, /is not a host name/],
  ];
  for (const [identifier, type, detail] of refused)
    t.match(
      problemOf(() => orderIdentifiers([identifier])),
      { type, detail },
      JSON.stringify(identifier),
    );
});

t.test("csrNamesMatch: the CSR's SANs (and CN) are exactly the order's identifiers", async (t) => {
  const order = orderIdentifiers([
    { type: 'dns', value: 'a.example' },
    { type: 'ip', value: '2001:db8::1' },
  ]);
  const csr = (sans: SubjectAltName[], commonName: string | null = null) => ({
    subjectAltNames: sans,
    subject: { common_name: commonName },
  });
  t.ok(
    csrNamesMatch(
      order,
      csr([
        { type: 'DNS', value: 'A.example' },
        { type: 'IP', value: '2001:DB8:0::1' },
      ]),
    ),
    'case and IPv6 form do not matter',
  );
  t.ok(
    csrNamesMatch(
      order,
      csr(
        [
          { type: 'DNS', value: 'a.example' },
          { type: 'IP', value: '2001:db8::1' },
        ],
        'A.Example',
      ),
    ),
    'a CN among the SANs',
  );
  t.notOk(csrNamesMatch(order, csr([{ type: 'DNS', value: 'a.example' }])), 'one identifier missing');
  t.notOk(
    csrNamesMatch(
      order,
      csr([
        { type: 'DNS', value: 'a.example' },
        { type: 'IP', value: '2001:db8::1' },
        { type: 'DNS', value: 'b.example' },
      ]),
    ),
    'one name more',
  );
  t.notOk(
    csrNamesMatch(
      order,
      csr(
        [
          { type: 'DNS', value: 'a.example' },
          { type: 'IP', value: '2001:db8::1' },
        ],
        'c.example',
      ),
    ),
    'a CN outside the SANs',
  );
  t.notOk(
    csrNamesMatch(
      order,
      csr([
        { type: 'DNS', value: 'a.example' },
        { type: 'IP', value: '2001:db8::1' },
        { type: 'EMAIL', value: 'x@a.example' },
      ]),
    ),
    'an email SAN',
  );
  t.ok(
    csrNamesMatch(orderIdentifiers([{ type: 'ip', value: '10.0.0.1' }]), csr([{ type: 'IP', value: '10.0.0.1' }], '10.0.0.1')),
    'an IP CN',
  );
  // RFC 8555 §7.4: a dns identifier "MUST appear either in the commonName ... or in ... a subjectAltName".
  t.ok(csrNamesMatch(orderIdentifiers([{ type: 'dns', value: 'a.example' }]), csr([], 'A.example')), 'the CN alone names one identifier');
  t.notOk(csrNamesMatch(order, csr([{ type: 'IP', value: '2001:db8::1' }], 'c.example')), 'a CN alone, not an identifier');
  t.ok(csrNamesMatch(order, csr([{ type: 'IP', value: '2001:db8::1' }], 'a.example')), 'one identifier by CN, the other by SAN');
});

t.test('reverseDnsName: the SNI of an IP identifier in tls-alpn-01 (RFC 8738 §6, names as RFC 1035 and RFC 3596)', async (t) => {
  t.equal(reverseDnsName('127.0.0.1'), '1.0.0.127.in-addr.arpa');
  t.equal(reverseDnsName('4321:0:1:2:3:4:567:89ab'), 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa');
  t.throws(() => reverseDnsName('example.com'));
});

t.test('a rate-limit refusal is rateLimited (RFC 8555 §6.6), its Retry-After kept', async (t) => {
  const refusal = problemOfAppError(errors.tooManyRequests(58));
  t.match(refusal.document(), { type: 'urn:ietf:params:acme:error:rateLimited', status: 429 });
  t.same(refusal.headers, { 'retry-after': '58' });
});
