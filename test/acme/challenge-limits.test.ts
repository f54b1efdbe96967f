/**
 * What a challenge validation will not do, whoever answers it: last past its deadline (a responder trickling bytes
 * fails the challenge with a timeout, and the challenge says Retry-After while it is processing, RFC 8555 §7.5.1),
 * or connect to an unspecified, link-local (the cloud metadata address) or multicast address, whatever a name
 * resolves to. And tls-alpn-01's certificate names an IPv6 identifier the way Node prints it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { type DnsResolver, createChallengeValidator, isValidationTarget, namesOnly } from '../../src/services/acme/challenge-validation.ts';
import { scratch } from '../certificates/support.ts';
import { RawAcme, accountKey } from './jws-client.ts';
import { acmeCa, dnsServer, eabKey, freePort, http01Responder, serverCertificate, startAcmeServer } from './support.ts';

/** Longer than any validation deadline: only a validation without one waits for the end. */
const TRICKLE_MS = 30_000;

/** A TCP server on 127.0.0.1 that sends `head`, then one byte a second, and ends after TRICKLE_MS. */
async function trickler(port: number, head: Buffer): Promise<void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.write(head);
    const drip = setInterval(() => socket.write('x'), 1000);
    const end = setTimeout(() => socket.end(), TRICKLE_MS);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(drip);
      clearTimeout(end);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
}

t.test('a responder that never finishes fails the challenge on the deadline; processing, it says Retry-After', async (t) => {
  const server = await startAcmeServer({ env: { ACME_STATIC_HOSTS: 'slow.example.internal=127.0.0.1' } });
  t.teardown(() => server.close());
  await trickler(server.http01Port, Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\nx'));
  // tls-alpn-01 alongside (the two deadlines run at once): a TLS record header announcing 16 KiB, then a byte a second.
  const tlsPort = await freePort();
  await trickler(tlsPort, Buffer.from([0x16, 0x03, 0x03, 0x40, 0x00]));
  const tlsValidation = createChallengeValidator({ http01Port: 80, tlsAlpn01Port: tlsPort, staticHosts: {} })
    .validate({ type: 'tls-alpn-01', token: 't', identifier: { type: 'ip', value: '127.0.0.1' }, keyAuthorization: 't.k' })
    .then(
      () => null,
      (failure: unknown) => failure,
    );

  const caId = await acmeCa(server.api);
  const client = await new RawAcme(`${server.baseUrl}/acme/${caId}/directory`, accountKey('ES256')).init();
  t.equal((await client.newAccount(await eabKey(server.api, caId))).status, 201);
  const created = await client.newOrder(['slow.example.internal']);
  const authorization = (await client.post(created.body.authorizations[0], '')).body;
  const challenge = authorization.challenges.find((item: { type: string }) => item.type === 'http-01');
  const answering = client.post(challenge.url, {});
  const prisma = server.harness.database.prisma;
  const id = challenge.url.split('/').pop();
  while ((await prisma.acmeChallenge.findUniqueOrThrow({ where: { id } })).status === 'pending')
    await new Promise((resolve) => setTimeout(resolve, 50));
  const polled = await client.post(challenge.url, '');
  t.equal(polled.body.status, 'processing');
  t.match(polled.headers.get('retry-after'), /^[1-9]\d*$/, 'a processing challenge carries Retry-After');
  const answered = await answering;
  t.match(answered.body, { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:connection', detail: /timed out/ } }, 'http-01');
  t.equal(answered.headers.get('retry-after'), null, 'a finished challenge carries none');
  t.equal((await client.post(created.headers.get('location')!, '')).body.status, 'invalid', 'the order failed with it');
  t.match(await tlsValidation, { type: 'connection', message: /timed out/ }, 'tls-alpn-01');
});

t.test('a DNS server that never answers fails the challenge as a DNS problem, A and AAAA asked at once', async (t) => {
  const silent = await dnsServer();
  t.teardown(() => silent.close());
  for (const type of [1, 28]) silent.unanswered.add(type);
  const validator = createChallengeValidator({
    http01Port: 80,
    tlsAlpn01Port: 443,
    dnsServer: `127.0.0.1:${silent.port}`,
    staticHosts: {},
  });
  const refused = await validator
    .validate({ type: 'http-01', token: 't', identifier: { type: 'dns', value: 'silent.example.internal' }, keyAuthorization: 't.k' })
    .then(
      () => null,
      (error: { type?: string; message: string }) => ({ type: error.type, message: error.message }),
    );
  // Whether the resolver gives up first or the validation's deadline ends the look-up, it is the name that failed.
  t.match(refused, { type: 'dns', message: /could not resolve silent\.example\.internal/ });
  t.ok(
    silent.queries.includes('A silent.example.internal') && silent.queries.includes('AAAA silent.example.internal'),
    silent.queries.join(', '),
  );
});

t.test('an A answer is taken without waiting for an AAAA one the server drops', async (t) => {
  const port = await freePort();
  const responder = await http01Responder(port);
  t.teardown(() => responder.close());
  responder.tokens.set('tok', 'tok.key');
  const asked: string[] = [];
  // AAAA never answers: a validation that waited for it would end at its deadline, whatever the machine's speed.
  const resolver = {
    resolve4: async (name: string) => {
      asked.push(`A ${name}`);
      return ['127.0.0.1'];
    },
    resolve6: (name: string) => {
      asked.push(`AAAA ${name}`);
      return new Promise<string[]>(() => undefined);
    },
    resolveTxt: async () => [],
  } as unknown as DnsResolver;
  const validator = createChallengeValidator(
    { http01Port: port, tlsAlpn01Port: 443, dnsServer: '127.0.0.1:53', staticHosts: {} },
    resolver,
  );
  await validator.validate({
    type: 'http-01',
    token: 'tok',
    identifier: { type: 'dns', value: 'v4-only.example.internal' },
    keyAuthorization: 'tok.key',
  });
  t.same(asked.sort(), ['A v4-only.example.internal', 'AAAA v4-only.example.internal'], 'both asked at once');
  t.equal(responder.requests.length, 1, 'validated at the A address');
});

t.test('unspecified, link-local and multicast addresses are refused after resolution, before any connection', async (t) => {
  const dns = await dnsServer();
  t.teardown(() => dns.close());
  dns.addresses.set('metadata.example.internal', '169.254.169.254');
  const validator = createChallengeValidator({
    http01Port: 80,
    tlsAlpn01Port: 443,
    dnsServer: `127.0.0.1:${dns.port}`,
    staticHosts: { 'link.example.internal': 'fe80::1', 'mapped.example.internal': '::ffff:169.254.169.254' },
  });
  const identifiers = [
    { type: 'dns', value: 'metadata.example.internal' },
    { type: 'dns', value: 'link.example.internal' },
    { type: 'dns', value: 'mapped.example.internal' },
    { type: 'ip', value: '169.254.169.254' },
    { type: 'ip', value: 'fe80::1' },
    { type: 'ip', value: '0.0.0.0' },
    { type: 'ip', value: '::' },
    { type: 'ip', value: '224.0.0.1' },
    { type: 'ip', value: 'ff02::1' },
  ];
  const connect = net.Socket.prototype.connect;
  let connections = 0;
  net.Socket.prototype.connect = function counted(this: net.Socket, ...args: unknown[]) {
    connections++;
    return (connect as (...given: unknown[]) => net.Socket).apply(this, args);
  } as typeof connect;
  t.teardown(() => {
    net.Socket.prototype.connect = connect;
  });
  const outcomes = await Promise.all(
    identifiers.flatMap((identifier) =>
      ['http-01', 'tls-alpn-01'].map((type) =>
        validator.validate({ type, token: 't', identifier, keyAuthorization: 't.k' }).then(
          () => ({ identifier, type, refused: null }),
          (error: { type?: string; message: string }) => ({ identifier, type, refused: { type: error.type, message: error.message } }),
        ),
      ),
    ),
  );
  for (const outcome of outcomes)
    t.match(outcome.refused, { type: 'connection', message: /unspecified, link-local or multicast/ }, JSON.stringify(outcome));
  t.equal(connections, 0, 'no connection was attempted');
  t.ok(dns.queries.includes('A metadata.example.internal'), 'the name was resolved through DNS');
});

t.test('isValidationTarget: private and loopback addresses are, unspecified, link-local and multicast ones are not', async (t) => {
  for (const address of ['10.1.2.3', '172.16.0.1', '192.168.1.1', 'fd00::1', '127.0.0.1', '::1', '203.0.113.7', '2001:db8::1'])
    t.ok(isValidationTarget(address), address);
  for (const address of [
    '0.0.0.0',
    '0.1.2.3',
    '::',
    '169.254.169.254',
    '169.254.0.1',
    'fe80::1',
    'febf::1',
    '224.0.0.1',
    '239.255.255.250',
  ])
    t.notOk(isValidationTarget(address), address);
  for (const address of ['ff02::1', '::ffff:169.254.169.254', '::ffff:0.0.0.0', 'not-an-address'])
    t.notOk(isValidationTarget(address), address);
  // The metadata service's IPv6 address, and IPv6 forms that reach an IPv4 host (NAT64, IPv4-compatible).
  for (const address of ['fd00:ec2::254', '64:ff9b::169.254.169.254', '64:ff9b::a9fe:1', '::169.254.169.254', '::a9fe:a9fe'])
    t.notOk(isValidationTarget(address), address);
  for (const address of ['fd00:ec2::253', '64:ff9b::10.0.0.1', '::10.0.0.1'])
    t.ok(isValidationTarget(address), `${address}: a private host`);
});

t.test("namesOnly: an IPv6 identifier matches Node's uncompressed upper-case form of the same address", async (t) => {
  const { certFile } = await serverCertificate(await scratch('challenge-limits'), '2001:db8::1');
  const subjectAltName = new X509Certificate(readFileSync(certFile)).subjectAltName;
  t.equal(subjectAltName, 'IP Address:2001:DB8:0:0:0:0:0:1', 'how Node prints it');
  t.ok(namesOnly(subjectAltName, { type: 'ip', value: '2001:db8::1' }));
  t.notOk(namesOnly(subjectAltName, { type: 'ip', value: '2001:db8::2' }));
  t.ok(namesOnly('IP Address:127.0.0.1', { type: 'ip', value: '127.0.0.1' }));
  t.ok(namesOnly('DNS:a.example.internal', { type: 'dns', value: 'a.example.internal' }));
  t.notOk(namesOnly('IP Address:2001:DB8:0:0:0:0:0:1, DNS:a.example.internal', { type: 'ip', value: '2001:db8::1' }), 'only that name');
  t.notOk(namesOnly('DNS:2001:db8::1', { type: 'ip', value: '2001:db8::1' }), 'as an IP address');
  t.notOk(namesOnly('IP Address:0:0:0:0:0:FFFF:7F00:1', { type: 'ip', value: '127.0.0.1' }), 'an IPv4-mapped address is another name');
  t.notOk(namesOnly(undefined, { type: 'ip', value: '2001:db8::1' }));
});
