/**
 * Property tests of the matcher and the evaluator (src/services/policy/): random names against random patterns,
 * subtrees and policies, each outcome compared with a reference implementation written here from the rules'
 * text — string and regex matching, openssl's own name-constraint algorithm (crypto/x509/v3_ncons.c: nc_dns,
 * nc_uri, nc_email), mask arithmetic for IPs, and brute force over a finite universe of names for the set
 * relations. Seeded, so a failure replays; the first mismatch is reported with its inputs.
 */
import t, { type Test } from 'tap';
import { evaluateIssuance, parseIssuancePolicy, type IssuanceFacts, type RequestedName } from '../../src/services/policy/index.ts';
import { validateNameConstraints } from '../../src/services/request-fields.ts';
import { fuzzer } from '../helpers/fuzz.ts';
import { expand6, ipv4, opensslNcDns, opensslNcEmail, opensslNcUri, refDnsPattern, refIpInCidr, refLower } from './reference.ts';

const CASES = 4000;
const { pick, integer, chance } = fuzzer(t, 0x19_2026);

// ---------------------------------------------------------------------------------------------------------------
// Generators: a small alphabet so that random names and patterns often relate

const LABELS = ['a', 'b', 'svc', 'cluster', 'local', 'prod', 'x-1', '_acme', 'bücher', 'xn--bcher-kva'];
/** Never used by the generators: a wildcard name's expansion with it stands for "any other label". */
const FRESH = 'zzfresh';
const shout = (label: string): string => (chance(0.15) ? label.toUpperCase() : label);
const dnsName = (depth = 1 + integer(4)): string => Array.from({ length: depth }, () => shout(pick(LABELS))).join('.');
const dnsPattern = (): string => (chance(0.5) ? `*.${dnsName(1 + integer(3))}` : dnsName());
const requestedDns = (): string => (chance(0.25) ? `*.${dnsName(1 + integer(3))}` : dnsName());
/** What a requested wildcard stands for, finitely: one label of each kind, the fresh one included. */
const expansions = (name: string): string[] =>
  name.startsWith('*.') ? [...LABELS, FRESH].map((label) => `${label}.${name.slice(2)}`) : [name];

const facts = (names: RequestedName[], extra: Partial<IssuanceFacts> = {}): IssuanceFacts => ({
  kind: 'ENTITY',
  names,
  notBefore: new Date(0),
  notAfter: new Date(86_400_000),
  keyAlgorithm: 'EC256',
  extendedKeyUsages: ['1.3.6.1.5.5.7.3.1'],
  ...extra,
});

interface Mismatch {
  input: unknown;
  expected: unknown;
  actual: unknown;
}
function compare(t: Test, what: string, cases: number, run: () => Mismatch | null) {
  let first: Mismatch | null = null;
  let mismatches = 0;
  for (let i = 0; i < cases; i++) {
    const mismatch = run();
    if (mismatch) {
      mismatches++;
      first ??= mismatch;
    }
  }
  t.equal(mismatches, 0, `${what}: ${cases} cases agree with the reference${first ? `; first mismatch ${JSON.stringify(first)}` : ''}`);
}

// ---------------------------------------------------------------------------------------------------------------

t.test('DNS allow and deny lists against regex matching (wildcards, case, IDNA)', async (t) => {
  compare(t, 'dns policy', CASES, () => {
    const allowed = Array.from({ length: integer(4) }, dnsPattern);
    const denied = Array.from({ length: integer(3) }, dnsPattern);
    const name = requestedDns();
    const policy = parseIssuancePolicy({ allowed: { dns: allowed }, denied: { dns: denied } })!;
    const names = expansions(name);
    const isDenied = names.some((n) => denied.some((p) => refDnsPattern(p, n)));
    const isAllowed = names.every((n) => allowed.some((p) => refDnsPattern(p, n)));
    const expected = !isDenied && isAllowed;
    const violation = evaluateIssuance({ policies: [policy], chainConstraints: [] }, facts([{ type: 'DNS', value: name, field: 'san' }]));
    const actual = violation === null;
    const ruleOk = expected || violation?.rule === (isDenied ? 'name_denied' : 'name_not_allowed');
    return actual === expected && ruleOk ? null : { input: { allowed, denied, name }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('DNS name constraints against openssl nc_dns (permitted, excluded, wildcard names)', async (t) => {
  compare(t, 'dns constraints', CASES, () => {
    const subtree = () => (chance(0.1) ? '' : `${chance(0.5) ? '.' : ''}${dnsName(1 + integer(3))}`);
    const permitted = Array.from({ length: integer(3) }, subtree);
    const excluded = Array.from({ length: integer(2) }, subtree).filter(Boolean);
    const name = requestedDns();
    const constraints = validateNameConstraints({ permitted: { dns: permitted }, excluded: { dns: excluded } });
    const names = expansions(name);
    const within = permitted.length === 0 || names.every((n) => permitted.some((base) => opensslNcDns(n, base)));
    const excludedHit = names.some((n) => excluded.some((base) => opensslNcDns(n, base)));
    const expected = within && !excludedHit;
    const violation = evaluateIssuance(
      { policies: [], chainConstraints: constraints ? [constraints] : [] },
      facts([{ type: 'DNS', value: name, field: 'san' }]),
    );
    return (violation === null) === expected
      ? null
      : { input: { permitted, excluded, name }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('IP allow lists and constraints against mask arithmetic (IPv4 and IPv6 apart)', async (t) => {
  const v4 = () => Array.from({ length: 4 }, () => pick([0, 10, 127, 192, 168, 255, integer(256)])).join('.');
  const v6 = () => pick(['fd00::', 'fd00::1', 'fd00:1::', '2001:db8::', '2001:db8::42', '::1', '::']);
  const cidrOf = (address: string) => {
    const bits = address.includes(':') ? pick([0, 8, 16, 32, 64, 128]) : pick([0, 8, 16, 24, 31, 32]);
    // Zero the host bits with the reference's own arithmetic, so the pattern is canonical.
    if (address.includes(':')) {
      const value = (BigInt(`0x${expand6(address)}`) >> BigInt(128 - bits)) << BigInt(128 - bits);
      const hex = value.toString(16).padStart(32, '0');
      return `${hex.match(/.{4}/g)!.join(':')}/${bits}`;
    }
    const value = bits === 0 ? 0 : Math.floor(ipv4(address) / 2 ** (32 - bits)) * 2 ** (32 - bits);
    return `${[24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.')}/${bits}`;
  };
  compare(t, 'ip', CASES, () => {
    const cidrs = Array.from({ length: 1 + integer(3) }, () => cidrOf(chance(0.7) ? v4() : v6()));
    const address = chance(0.7) ? v4() : v6();
    const asConstraint = chance(0.5);
    const rules = asConstraint
      ? { policies: [], chainConstraints: [validateNameConstraints({ permitted: { ip: cidrs } })!] }
      : { policies: [parseIssuancePolicy({ allowed: { ip: cidrs } })!], chainConstraints: [] };
    const expected = cidrs.some((cidr) => refIpInCidr(address, cidr));
    const violation = evaluateIssuance(rules, facts([{ type: 'IP', value: address, field: 'san' }]));
    return (violation === null) === expected
      ? null
      : { input: { cidrs, address, asConstraint }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('URI patterns against regex matching, URI constraints against openssl nc_uri', async (t) => {
  // URIs are IA5Strings (ASCII): internationalized hosts arrive as A-labels.
  const host = () => dnsName(1 + integer(3)).replace(/bücher/gi, 'xn--bcher-kva');
  const path = () => pick(['', '/', '/ns', '/ns/a', '/ns/a/sa/b', '/ns/b/sa/a', '/x?y=1', '/ns/a#f']);
  const port = () => pick([':8443', ':08443', ':443']);
  const uri = () => `${pick(['spiffe', 'https', 'HTTPS'])}://${chance(0.1) ? 'user@' : ''}${host()}${chance(0.15) ? port() : ''}${path()}`;
  const pattern = () =>
    `${pick(['spiffe', 'https'])}://${chance(0.4) ? '*.' : ''}${host()}${chance(0.1) ? port() : ''}${pick(['', '/*', '/ns/*', '/ns/a', '/ns/a/sa/b'])}`;
  const refUriPattern = (p: string, u: string): boolean => {
    const pm = /^([a-z]+):\/\/([^/:]+)(?::(\d+))?(.*)$/i.exec(p)!;
    const um = /^([a-z]+):\/\/(?:([^@/]*)@)?([^/:]+)(?::(\d+))?(.*)$/i.exec(u)!;
    if (pm[1].toLowerCase() !== um[1].toLowerCase() || !refDnsPattern(pm[2], um[3])) return false;
    if (pm[3] !== undefined && pm[3] !== um[4]) return false;
    return pm[4].endsWith('/*') ? um[5].startsWith(pm[4].slice(0, -1)) && um[5].length > pm[4].length - 1 : um[5] === pm[4];
  };
  // A deny rule: the port by value (https: 443 by default), query and fragment ignored, `/p/*` also taking `/p`.
  const refUriDeny = (p: string, u: string): boolean => {
    const pm = /^([a-z]+):\/\/([^/:]+)(?::(\d+))?(.*)$/i.exec(p)!;
    const um = /^([a-z]+):\/\/(?:([^@/]*)@)?([^/:]+)(?::(\d+))?(.*)$/i.exec(u)!;
    const scheme = um[1].toLowerCase();
    if (pm[1].toLowerCase() !== scheme || !refDnsPattern(pm[2], um[3])) return false;
    const port = um[4] ?? (scheme === 'https' ? '443' : undefined);
    if (pm[3] !== undefined && Number(pm[3]) !== Number(port)) return false;
    const pathOf = (rest: string) => rest.split(/[?#]/)[0] || '/';
    return pm[4].endsWith('/*') ? `${pathOf(um[5])}/`.startsWith(pm[4].slice(0, -1)) : pathOf(um[5]) === pathOf(pm[4]);
  };
  compare(t, 'uri policy', CASES, () => {
    // Without an allow list, so that the deny rules alone decide often.
    const allowed = chance(0.3) ? null : Array.from({ length: integer(3) }, pattern);
    const denied = Array.from({ length: integer(2) }, pattern);
    const name = uri();
    const hasUserinfo = name.includes('@');
    const expected =
      !denied.some((p) => refUriDeny(p, name)) && (allowed === null || (!hasUserinfo && allowed.some((p) => refUriPattern(p, name))));
    const violation = evaluateIssuance(
      { policies: [parseIssuancePolicy({ allowed: allowed && { uri: allowed }, denied: { uri: denied } })!], chainConstraints: [] },
      facts([{ type: 'URI', value: name, field: 'san' }]),
    );
    return (violation === null) === expected
      ? null
      : { input: { allowed, denied, name }, expected, actual: violation?.message ?? 'accepted' };
  });
  compare(t, 'uri constraints', CASES, () => {
    const subtree = () => `${chance(0.5) ? '.' : ''}${host()}`;
    const permitted = Array.from({ length: integer(3) }, subtree);
    const excluded = Array.from({ length: permitted.length === 0 ? 1 + integer(2) : integer(2) }, subtree);
    const ipHost = chance(0.15);
    const name = ipHost
      ? `${pick(['spiffe', 'https'])}://${pick(['10.1.2.3', '192.168.0.1', '[2001:db8::1]', '[::1]'])}${chance(0.15) ? ':8443' : ''}${path()}`
      : uri();
    // openssl reads 'user@host' as the host and refuses it; the service refuses userinfo under URI constraints too.
    // RFC 5280 §4.2.1.10: a URI whose host is an IP address MUST be rejected wherever URI constraints apply, excluded
    // subtrees alone included (Go fails the chain; openssl would compare the address as a host name).
    const judged = !ipHost && !name.includes('@');
    const within = permitted.length === 0 || permitted.some((base) => opensslNcUri(name.toLowerCase(), refLower(base)));
    const excludedHit = excluded.some((base) => opensslNcUri(name.toLowerCase(), refLower(base)));
    const expected = judged && within && !excludedHit;
    const violation = evaluateIssuance(
      { policies: [], chainConstraints: [validateNameConstraints({ permitted: { uri: permitted }, excluded: { uri: excluded } })!] },
      facts([{ type: 'URI', value: name, field: 'san' }]),
    );
    return (violation === null) === expected
      ? null
      : { input: { permitted, excluded, name }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('deny rules take spelling variants of a URI or a mailbox; allow rules stay exact', async (t) => {
  const judge = (document: object, type: 'URI' | 'EMAIL', value: string) =>
    evaluateIssuance({ policies: [parseIssuancePolicy(document)!], chainConstraints: [] }, facts([{ type, value, field: 'san' }]))?.rule ??
    'accepted';
  const deny = (type: 'URI' | 'EMAIL', pattern: string, value: string) =>
    judge({ denied: { [type.toLowerCase()]: [pattern] } }, type, value);
  const denials: [string, string][] = [
    ['spiffe://prod.example/*', 'spiffe://prod.example'],
    ['spiffe://prod.example/*', 'spiffe://prod.example/'],
    ['spiffe://prod.example/*', 'spiffe://PROD.example/x?y'],
    ['spiffe://prod.example/*', 'spiffe://prod.example/x#y'],
    ['spiffe://prod.example/*', 'spiffe://prod.example?y'],
    ['spiffe://prod.example/ns/*', 'spiffe://prod.example/ns'],
    ['spiffe://prod.example/ns/a', 'spiffe://prod.example/ns/a?y'],
    ['https://h.example:443/*', 'https://h.example/x'],
    ['http://h.example:80/*', 'http://h.example'],
    ['https://h.example:8443/*', 'https://h.example:08443/x'],
  ];
  for (const [pattern, value] of denials) t.equal(deny('URI', pattern, value), 'name_denied', `${pattern} denies ${value}`);
  const passes: [string, string][] = [
    ['spiffe://prod.example/ns/*', 'spiffe://prod.example/nsx'],
    ['spiffe://prod.example/ns/a', 'spiffe://prod.example/ns/a/b'],
    ['https://h.example:443/*', 'http://h.example/x'],
    ['https://h.example:443/*', 'https://h.example:8443/x'],
    ['spiffe://prod.example:443/*', 'spiffe://prod.example/x'],
  ];
  for (const [pattern, value] of passes) t.equal(deny('URI', pattern, value), 'accepted', `${pattern} does not deny ${value}`);
  t.equal(deny('EMAIL', 'admin@example.com', 'Admin@example.com'), 'name_denied', 'a mailbox deny ignores the case of the local part');
  t.equal(deny('EMAIL', 'admin@example.com', 'ADMIN@Example.COM'), 'name_denied');
  t.equal(deny('EMAIL', 'admin@example.com', 'admins@example.com'), 'accepted');

  // Allow rules keep exact matching: loosening them would sign names the policy author never listed.
  const allow = (type: 'URI' | 'EMAIL', pattern: string, value: string) =>
    judge({ allowed: { [type.toLowerCase()]: [pattern] } }, type, value);
  t.equal(allow('URI', 'spiffe://prod.example/*', 'spiffe://prod.example'), 'name_not_allowed');
  t.equal(allow('URI', 'https://h.example:443/*', 'https://h.example/x'), 'name_not_allowed');
  t.equal(allow('URI', 'spiffe://prod.example/ns/a', 'spiffe://prod.example/ns/a?y'), 'name_not_allowed');
  t.equal(allow('EMAIL', 'admin@example.com', 'Admin@example.com'), 'name_not_allowed');
});

t.test('email patterns and constraints against openssl nc_email', async (t) => {
  const host = () =>
    dnsName(1 + integer(3))
      .toLowerCase()
      .replace(/bücher/g, 'xn--bcher-kva');
  const mailbox = () => `${pick(['alice', 'bob', 'Alice'])}@${host()}`;
  compare(t, 'email constraints', CASES, () => {
    const base = () => pick([mailbox(), host(), `.${host()}`]);
    const permitted = Array.from({ length: 1 + integer(2) }, base);
    const name = mailbox();
    const expected = permitted.some((b) => opensslNcEmail(name, b));
    const violation = evaluateIssuance(
      { policies: [], chainConstraints: [validateNameConstraints({ permitted: { email: permitted } })!] },
      facts([{ type: 'EMAIL', value: name, field: 'san' }]),
    );
    return (violation === null) === expected ? null : { input: { permitted, name }, expected, actual: violation?.message ?? 'accepted' };
  });
  compare(t, 'email policy', CASES, () => {
    const pattern = () => pick([mailbox(), `*@${host()}`, `*@*.${host()}`]);
    const allowed = Array.from({ length: 1 + integer(2) }, pattern);
    const name = mailbox();
    const refMatch = (p: string) => {
      const [local, domain] = [p.slice(0, p.lastIndexOf('@')), p.slice(p.lastIndexOf('@') + 1)];
      const [nameLocal, nameDomain] = [name.slice(0, name.lastIndexOf('@')), name.slice(name.lastIndexOf('@') + 1)];
      return (local === '*' || local === nameLocal) && refDnsPattern(domain, nameDomain);
    };
    const expected = allowed.some(refMatch);
    const violation = evaluateIssuance(
      { policies: [parseIssuancePolicy({ allowed: { email: allowed } })!], chainConstraints: [] },
      facts([{ type: 'EMAIL', value: name, field: 'san' }]),
    );
    return (violation === null) === expected ? null : { input: { allowed, name }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('a child CA narrowing or widening its parent: subtree containment by brute force', async (t) => {
  // Every name the two subtrees could disagree on: each domain in play, one and two fresh labels below it.
  const universeOf = (bases: string[]) =>
    bases.flatMap((base) => {
      const domain = base.replace(/^\./, '');
      const labels = domain.split('.');
      const ancestors = labels.map((_, i) => labels.slice(i).join('.'));
      return ancestors.flatMap((d) => [d, `${FRESH}.${d}`, `${FRESH}.${FRESH}.${d}`, ...LABELS.map((l) => `${l}.${d}`)]);
    });
  compare(t, 'dns subtree containment', CASES, () => {
    const subtree = () => `${chance(0.5) ? '.' : ''}${dnsName(1 + integer(3))}`;
    const parent = Array.from({ length: 1 + integer(2) }, subtree);
    const child = subtree();
    const universe = universeOf([...parent, child]);
    const expected = universe.every((name) => !opensslNcDns(name, child) || parent.some((base) => opensslNcDns(name, base)));
    const violation = evaluateIssuance(
      { policies: [], chainConstraints: [validateNameConstraints({ permitted: { dns: parent } })!] },
      facts([], { kind: 'CA', extendedKeyUsages: [], nameConstraints: validateNameConstraints({ permitted: { dns: [child] } }) }),
    );
    const ruleOk = expected || violation?.rule === 'name_constraints_widen';
    return (violation === null) === expected && ruleOk
      ? null
      : { input: { parent, child }, expected, actual: violation?.message ?? 'accepted' };
  });
});

t.test('no accepted name outside the allowed set, whatever the policy document', async (t) => {
  // Random documents (valid or not): a refused document is a 400 AppError; an accepted one never lets a name
  // through that the reference does not allow.
  const junk = () =>
    pick<unknown>([null, 1, '', '*', '*.', '**.a', 'a..b', '-', {}, [], 'xn--zz', ' a', 'a b', '*.*.a', '10.0.0.0/33', '::/129']);
  let refusedDocuments = 0;
  let acceptedNames = 0;
  compare(t, 'accepted names', CASES, () => {
    const list = () => Array.from({ length: integer(4) }, () => (chance(0.1) ? junk() : dnsPattern()));
    const document: Record<string, unknown> = { allowed: { dns: list() }, denied: chance(0.5) ? { dns: list() } : undefined };
    if (chance(0.05)) document[pick(['alowed', 'deny', 'max_validity'])] = {};
    let policy: ReturnType<typeof parseIssuancePolicy>;
    try {
      policy = parseIssuancePolicy(document);
    } catch (error) {
      refusedDocuments++;
      const status = (error as { statusCode?: number }).statusCode;
      return status === 400 ? null : { input: document, expected: 'a 400 refusal', actual: String(error) };
    }
    const allowed = (document.allowed as { dns: string[] }).dns;
    const denied = ((document.denied as { dns?: string[] } | undefined)?.dns ?? []) as string[];
    const name = requestedDns();
    const violation = evaluateIssuance({ policies: [policy!], chainConstraints: [] }, facts([{ type: 'DNS', value: name, field: 'san' }]));
    if (violation !== null) return null;
    acceptedNames++;
    const names = expansions(name);
    const ok = names.every((n) => allowed.some((p) => refDnsPattern(p, n))) && !names.some((n) => denied.some((p) => refDnsPattern(p, n)));
    return ok ? null : { input: { document, name }, expected: 'refused', actual: 'accepted' };
  });
  t.ok(
    refusedDocuments > 0 && acceptedNames > 0,
    `both kinds seen: ${refusedDocuments} documents refused, ${acceptedNames} names accepted`,
  );
});
