/**
 * A signed request's key is looked up as soon as its head arrives (an unknown key is refused before the body is
 * read), and looked up again once the body is in: a key deleted while the body was on its way signs nothing, as the
 * delete promises ("signatures with it fail from then on"), and nothing is judged or recorded in its name (no 403 for
 * an action it lacks, no audit event). A mutation, a GET with a body, and a temporary pair whose issuing key goes are
 * tried. A started server; the body's last byte is sent only once the server has judged the head (a hook after the
 * auth hook says so) and the delete has committed.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { createTestApp } from '../helpers/app.ts';

const MARK = 'x-test-head-judged';
/** The requests whose head the server has judged, by their MARK value. */
const judged = new Map<string, () => void>();
const harness = await createTestApp({
  // Registered after the auth plugin, so it runs once the auth hook has looked the key up and let the request on.
  extraRoutes: (app) =>
    app.addHook('onRequest', async (request) => {
      const mark = request.headers[MARK];
      if (typeof mark === 'string') judged.get(mark)?.();
    }),
});
t.teardown(() => harness.close());
const { app } = harness;
const address = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
const admin = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  app.inject({ method, url, headers: harness.auth(), ...(payload && { payload }) });
const keyCount = async () => (await admin('GET', '/v1/access-keys')).json().total as number;

async function newKey(actions?: string[]): Promise<{ access: string; secret: string }> {
  return (await admin('POST', '/v1/access-keys', actions ? { actions } : {})).json().credential;
}

const signedHeaders = (key: { access: string; secret: string; securityToken?: string }, method: string, url: string, body: string) => {
  const headers: Record<string, string> = {
    host: address.host,
    'x-sdk-date': formatSdkDate(new Date()),
    'content-type': 'application/json',
    ...(key.securityToken && { 'x-security-token': key.securityToken }),
  };
  const authorization = signRequest({ method, url, headers, body: Buffer.from(body) }, key.access, key.secret, Object.keys(headers));
  return { ...headers, authorization };
};

/**
 * Sends a signed request over a raw socket, holding back its body's last byte until the server has judged the head
 * and `meanwhile` (the delete) is done; the answer's status line and the whole answer.
 */
async function sendHoldingBody(
  t: Test,
  key: { access: string; secret: string; securityToken?: string },
  method: string,
  url: string,
  body: string,
  meanwhile: () => Promise<void>,
): Promise<{ status: string; received: string }> {
  const mark = `${method}-${url}-${judged.size}`;
  const headJudged = new Promise<void>((resolve) => judged.set(mark, resolve));
  const socket = net.connect({ port: Number(address.port), host: address.hostname });
  t.teardown(() => socket.destroy());
  let received = '';
  const answer = new Promise<string>((resolve, reject) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const length = Number(/^content-length: *(\d+)/im.exec(received.slice(0, headEnd))?.[1] ?? 0);
      if (received.length >= headEnd + 4 + length) resolve(received);
    });
    socket.on('error', reject);
  });
  const head = Object.entries({ ...signedHeaders(key, method, url, body), 'content-length': String(body.length), [MARK]: mark })
    .map(([name, value]) => `${name}: ${value}`)
    .join('\r\n');
  socket.write(`${method} ${url} HTTP/1.1\r\n${head}\r\n\r\n${body[0]}`);
  await headJudged;
  await meanwhile();
  socket.write(body.slice(1));
  const whole = await answer;
  return { status: whole.slice(0, whole.indexOf('\r\n')), received: whole };
}

const deleteKey = (access: string) => async () => {
  const deleted = await admin('DELETE', `/v1/access-keys/${access}`);
  if (deleted.statusCode !== 204) throw new Error(`delete: ${deleted.statusCode} ${deleted.body}`);
};

t.test('a key deleted while a mutation body is on the way: 401, and the request does nothing', async (t) => {
  const key = await newKey();
  const before = (await keyCount()) - 1;
  const { status, received } = await sendHoldingBody(t, key, 'POST', '/v1/access-keys', '{}', deleteKey(key.access));
  t.equal(status, 'HTTP/1.1 401 Unauthorized', 'the deleted key signs nothing');
  t.match(received, /unknown access key/, 'named as an unknown key');
  t.equal(await keyCount(), before, 'no key was created with it');
});

t.test(
  'a key deleted while the body of a mutation it may not make is on the way: 401, not 403, and no audit event in its name',
  async (t) => {
    const key = await newKey(['pca:ca:list']);
    const { status, received } = await sendHoldingBody(t, key, 'POST', '/v1/private-certificate-authorities', '{}', deleteKey(key.access));
    t.equal(status, 'HTTP/1.1 401 Unauthorized', 'the credential is judged before the action');
    t.match(received, /unknown access key/);
    const inItsName = await harness.database.prisma.auditEvent.findMany({ where: { actor: key.access } });
    t.same(
      inItsName.map((event) => event.action),
      [],
      'the deleted key acted in nothing, not even a refusal',
    );
  },
);

t.test('a key deleted while the body of a GET is on the way (the SDK signs `{}` with its GETs): 401', async (t) => {
  const key = await newKey();
  const { status, received } = await sendHoldingBody(t, key, 'GET', '/v1/access-keys', '{}', deleteKey(key.access));
  t.equal(status, 'HTTP/1.1 401 Unauthorized', 'looked up again once the body is in');
  t.match(received, /unknown access key/);
});

t.test("a temporary pair's issuing key deleted while its mutation body is on the way: 401, no tag written", async (t) => {
  const issuing = await newKey();
  const minted = await fetch(`${address.origin}/v3.0/OS-CREDENTIAL/securitytokens`, {
    method: 'POST',
    headers: signedHeaders(issuing, 'POST', '/v3.0/OS-CREDENTIAL/securitytokens', '{}'),
    body: '{}',
  });
  t.equal(minted.status, 201, 'a temporary pair');
  const { access, secret, securitytoken: securityToken } = (await minted.json()).credential;
  const created = await admin('POST', '/v1/private-certificate-authorities', {
    type: 'ROOT',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: {
      common_name: 'in-flight-root',
      country: 'DE',
      state: 'BE',
      locality: 'Berlin',
      organization: 'test',
      organizational_unit: 'pki',
    },
    validity: { type: 'YEAR', value: 1 },
  });
  t.equal(created.statusCode, 200, created.body);
  const caPath = `/v1/private-certificate-authorities/${created.json().ca_id}`;
  const body = JSON.stringify({ tags: [{ key: 'team', value: 'in-flight' }] });
  const { status, received } = await sendHoldingBody(
    t,
    { access, secret, securityToken },
    'POST',
    `${caPath}/tags/create`,
    body,
    deleteKey(issuing.access),
  );
  t.equal(status, 'HTTP/1.1 401 Unauthorized', 'the pair of a deleted key signs nothing');
  t.match(received, /issued this security token is deleted/);
  t.same((await admin('GET', `${caPath}/tags`)).json().tags, [], 'no tag was written');
});
