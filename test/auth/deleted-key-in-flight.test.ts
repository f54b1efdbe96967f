/**
 * A signed request's key is looked up as soon as its head arrives (an unknown key is refused before the body is
 * read), and again once the body is in: a key deleted while the body was on its way signs nothing, as the delete
 * promises ("signatures with it fail from then on"). A started server; the body's last byte is sent only once the
 * server has judged the head (a hook after the auth hook says so) and the delete has committed.
 */
import net from 'node:net';
import t from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { createTestApp } from '../helpers/app.ts';

const MARK = 'x-test-head-judged';
let headJudged!: () => void;
const judged = new Promise<void>((resolve) => (headJudged = resolve));
const harness = await createTestApp({
  // Registered after the auth plugin, so it runs once the auth hook has looked the key up and let the request on.
  extraRoutes: (app) =>
    app.addHook('onRequest', async (request) => {
      if (request.headers[MARK]) headJudged();
    }),
});
t.teardown(() => harness.close());
const { app } = harness;
const address = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
const keyCount = async () => (await app.inject({ method: 'GET', url: '/v1/access-keys', headers: harness.auth() })).json().total as number;

t.test('a key deleted while its request body is on the way: 401, and the request does nothing', async (t) => {
  const created = await app.inject({ method: 'POST', url: '/v1/access-keys', headers: harness.auth(), payload: {} });
  const { access, secret } = created.json().credential as { access: string; secret: string };
  const url = '/v1/access-keys';
  const body = '{}';
  const headers = { host: address.host, 'x-sdk-date': formatSdkDate(new Date()), 'content-type': 'application/json' };
  const authorization = signRequest({ method: 'POST', url, headers, body: Buffer.from(body) }, access, secret, Object.keys(headers));

  const socket = net.connect({ port: Number(address.port), host: address.hostname });
  t.teardown(() => socket.destroy());
  let received = '';
  const statusLine = new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n')) resolve(received.slice(0, received.indexOf('\r\n')));
    });
    socket.on('error', reject);
  });
  const head = Object.entries({ ...headers, authorization, 'content-length': String(body.length), [MARK]: '1' })
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n');
  socket.write(`POST ${url} HTTP/1.1\r\n${head}\r\n\r\n${body[0]}`);
  await judged;
  t.equal((await app.inject({ method: 'DELETE', url: `/v1/access-keys/${access}`, headers: harness.auth() })).statusCode, 204);
  const before = await keyCount();
  socket.write(body.slice(1));
  t.equal(await statusLine, 'HTTP/1.1 401 Unauthorized', 'the deleted key signs nothing');
  t.match(received, /unknown access key/, 'named as an unknown key');
  t.equal(await keyCount(), before, 'no key was created with it');
});
