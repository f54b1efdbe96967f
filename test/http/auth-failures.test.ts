/**
 * A caller without a valid credential costs little: no credential, a token that does not verify, or a signed request
 * naming an unknown key, is refused before the body is read (the body may announce megabytes and never come), and
 * past AUTH_FAILURE_MAX refusals in a window its address gets 429 before anything else is done for it, however many
 * it sends at once. A started server, raw sockets for the unfinished bodies.
 */
import net from 'node:net';
import t from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { createTestApp } from '../helpers/app.ts';

const harness = await createTestApp({ env: { AUTH_FAILURE_MAX: '5' } });
t.teardown(() => harness.close());
const address = new URL(await harness.app.listen({ host: '127.0.0.1', port: 0 }));

/**
 * Sends the head and 10 bytes of a 4 MB body from `localAddress`, and resolves with the status line the server answers
 * before the rest.
 */
function answerToUnfinishedBody(headers: Record<string, string>, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: Number(address.port), host: address.hostname, localAddress });
    let received = '';
    const fail = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 10 s: the server waited for the announced body'));
    }, 10_000);
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n')) {
        clearTimeout(fail);
        socket.destroy();
        resolve(received.slice(0, received.indexOf('\r\n')));
      }
    });
    socket.on('error', reject);
    const head = Object.entries({ host: address.host, 'content-type': 'application/json', 'content-length': '4000000', ...headers })
      .map(([name, value]) => `${name}: ${value}`)
      .join('\r\n');
    socket.write(`POST /v1/private-certificates HTTP/1.1\r\n${head}\r\n\r\n[[[[[[[[[[`);
  });
}

t.test('no credential, or a token that does not verify: 401 before the body is read', async (t) => {
  t.equal(await answerToUnfinishedBody({}), 'HTTP/1.1 401 Unauthorized');
  t.equal(await answerToUnfinishedBody({ authorization: 'Bearer not.a.token' }), 'HTTP/1.1 401 Unauthorized');
  t.equal(await answerToUnfinishedBody({ 'x-auth-token': 'x', authorization: 'Bearer y' }), 'HTTP/1.1 401 Unauthorized', 'two credentials');
});

/** An Authorization of the right form naming a key that does not exist. */
const unknownKeySignature = `SDK-HMAC-SHA256 Access=NOSUCHKEY, SignedHeaders=host;x-sdk-date, Signature=${'0'.repeat(64)}`;

t.test('a signed request naming an unknown key, or signed too long ago: 401 before the body is read', async (t) => {
  // Another loopback address: its refusals leave 127.0.0.1's count to the test above.
  const fromOtherAddress = (sdkDate: Date) =>
    answerToUnfinishedBody({ authorization: unknownKeySignature, 'x-sdk-date': formatSdkDate(sdkDate) }, '127.0.0.2');
  for (let i = 0; i < 3; i++) t.equal(await fromOtherAddress(new Date()), 'HTTP/1.1 401 Unauthorized', 'unknown key');
  for (let i = 0; i < 2; i++) t.equal(await fromOtherAddress(new Date(Date.now() - 60 * 60_000)), 'HTTP/1.1 401 Unauthorized', 'stale');
  t.equal(await fromOtherAddress(new Date()), 'HTTP/1.1 429 Too Many Requests', 'counted: the sixth is refused unread');
});

t.test('a burst of refused credentials from one address gets AUTH_FAILURE_MAX 401s, the rest 429', async (t) => {
  const signedWithUnknownKey = () =>
    harness.app.inject({
      method: 'POST',
      url: '/v1/private-certificates',
      headers: { authorization: unknownKeySignature, 'x-sdk-date': formatSdkDate(new Date()) },
      payload: { csr: 'x' },
      remoteAddress: '192.0.2.20',
    });
  // All sent before any is answered: each must count while its key is looked up, not only once it is refused.
  const responses = await Promise.all(Array.from({ length: 40 }, signedWithUnknownKey));
  const statuses = responses.map((response) => response.statusCode);
  t.equal(statuses.filter((status) => status === 401).length, 5, '401s');
  t.equal(statuses.filter((status) => status === 429).length, 35, '429s');
  // Refused while places were held by credentials still being judged: a place frees in a moment, not a window.
  const retryAfter = responses.filter((response) => response.statusCode === 429).map((response) => response.headers['retry-after']);
  t.same([...new Set(retryAfter)], ['1'], 'Retry-After: 1 while the places are held by requests in flight');
  const afterwards = await signedWithUnknownKey();
  t.equal(afterwards.statusCode, 429, 'the refusals used up');
  t.ok(Number(afterwards.headers['retry-after']) > 1, 'then Retry-After runs to the end of the window');
});

t.test('accepted signed requests are not counted: more than AUTH_FAILURE_MAX of them from one address are served', async (t) => {
  const created = await harness.app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} });
  const { access, secret } = created.json().credential as { access: string; secret: string };
  const url = '/v1/private-certificate-authorities';
  for (let i = 0; i < 10; i++) {
    const headers = { host: 'pca.example.test', 'x-sdk-date': formatSdkDate(new Date()) };
    const authorization = signRequest({ method: 'GET', url, headers, body: new Uint8Array() }, access, secret, Object.keys(headers));
    const response = await harness.app.inject({ method: 'GET', url, headers: { ...headers, authorization }, remoteAddress: '192.0.2.21' });
    t.equal(response.statusCode, 200, `signed request ${i + 1}`);
  }
});

t.test('a signed request refused for its body before its signature is checked (413) counts as a refusal', async (t) => {
  const created = await harness.app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} });
  const { access, secret } = created.json().credential as { access: string; secret: string };
  const signed = (method: 'GET' | 'POST', url: string, body: Buffer) => {
    const headers = { host: 'pca.example.test', 'content-type': 'application/json', 'x-sdk-date': formatSdkDate(new Date()) };
    const authorization = signRequest({ method, url, headers, body }, access, secret, Object.keys(headers));
    return harness.app.inject({ method, url, headers: { ...headers, authorization }, payload: body, remoteAddress: '192.0.2.22' });
  };
  const tooLarge = Buffer.alloc(harness.config.bodyLimitBytes + 1, 0x20);
  // A POST's body is refused by the parser; a GET's (which the Node SDK signs) while its signature is checked.
  for (let i = 0; i < 3; i++) t.equal((await signed('POST', '/v1/private-certificates/csr', tooLarge)).statusCode, 413, `POST ${i + 1}`);
  for (let i = 0; i < 2; i++)
    t.equal((await signed('GET', '/v1/private-certificate-authorities', tooLarge)).statusCode, 413, `GET ${i + 1}`);
  const limited = await signed('POST', '/v1/private-certificates/csr', Buffer.from('{}'));
  t.equal(limited.statusCode, 429, 'the sixth, well-formed, waits: the address used its refusals');
  t.match(limited.json(), { error_code: 'APIG.0308' });
});

t.test('a signed request refused for its body after its signature is checked (400) is not counted as a refused credential', async (t) => {
  const created = await harness.app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} });
  const { access, secret } = created.json().credential as { access: string; secret: string };
  const url = '/v1/private-certificates/csr';
  for (let i = 0; i < 8; i++) {
    const body = Buffer.from('{"issuer_id": ');
    const headers = { host: 'pca.example.test', 'content-type': 'application/json', 'x-sdk-date': formatSdkDate(new Date()) };
    const authorization = signRequest({ method: 'POST', url, headers, body }, access, secret, Object.keys(headers));
    const response = await harness.app.inject({
      method: 'POST',
      url,
      headers: { ...headers, authorization },
      payload: body,
      remoteAddress: '192.0.2.23',
    });
    t.equal(response.statusCode, 400, `malformed JSON ${i + 1}: 400, counted on the key's budget, not as a refused credential`);
  }
});

t.test('past AUTH_FAILURE_MAX refusals an address gets 429, whatever it sends; other addresses are not affected', async (t) => {
  const call = (remoteAddress: string, authorization: string) =>
    harness.app.inject({ method: 'GET', url: '/v1/private-certificate-authorities', headers: { authorization }, remoteAddress });
  const token = `Bearer ${harness.token()}`;
  for (let i = 0; i < 5; i++) t.equal((await call('192.0.2.10', 'Bearer wrong')).statusCode, 401, `refusal ${i + 1}`);
  const limited = await call('192.0.2.10', 'Bearer wrong');
  t.equal(limited.statusCode, 429, 'the sixth');
  t.match(limited.json(), { error_code: 'APIG.0308' });
  t.ok(Number(limited.headers['retry-after']) >= 1, 'with Retry-After');
  t.equal((await call('192.0.2.10', token)).statusCode, 429, 'a valid token from that address waits too');
  t.equal((await call('192.0.2.11', token)).statusCode, 200, 'another address is served');
  const health = await harness.app.inject({ method: 'GET', url: '/health', remoteAddress: '192.0.2.10' });
  t.equal(health.statusCode, 200, 'public routes are not affected');
  for (let i = 0; i < 10; i++) t.equal((await call('192.0.2.12', token)).statusCode, 200);
  t.equal((await call('192.0.2.12', token)).statusCode, 200, 'answered requests are not counted');
});

t.test('refusals from one IPv6 /64 count together, whichever of its addresses sends them', async (t) => {
  const call = (remoteAddress: string, authorization: string) =>
    harness.app.inject({ method: 'GET', url: '/v1/private-certificate-authorities', headers: { authorization }, remoteAddress });
  for (let i = 0; i < 5; i++) t.equal((await call(`2001:db8:5:1::${i + 1}`, 'Bearer wrong')).statusCode, 401, `refusal ${i + 1}`);
  t.equal((await call('2001:db8:5:1:abcd::77', 'Bearer wrong')).statusCode, 429, 'the sixth, from yet another address of the /64');
  t.equal((await call('2001:db8:5:2::1', `Bearer ${harness.token()}`)).statusCode, 200, 'the next /64 is served');
});
