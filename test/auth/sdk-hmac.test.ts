import http from 'node:http';
import { createHash } from 'node:crypto';
import { stringify as stringifyQuery } from 'node:querystring';
import t, { type Test } from 'tap';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import { GlobalCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/GlobalCredentials.js';
import { HcClient } from '@huaweicloud/huaweicloud-sdk-core/HcClient.js';
import { DefaultHttpClient } from '@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient.js';
import { AppError, ErrorCode } from '../../src/errors.ts';
import {
  canonicalRequest,
  formatSdkDate,
  parseSdkAuthorization,
  signRequest,
  stringToSign,
  type SignedRequest,
} from '../../src/auth/sdk-hmac.ts';
import { verifySdkSignature } from './support.ts';
import { fuzzCases, fuzzer } from '../helpers/fuzz.ts';

const SECRETS: Record<string, string> = { AccessKey: 'SecretKey', AK1: 'SK1' };
const lookupSecret = async (access: string) => SECRETS[access];
const NOW = new Date('2024-05-06T07:08:09Z');
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const URN = 'pca:cn-north-4:0123456789abcdef0123456789abcdef:ca:11111111-2222-4333-8444-555555555555';
const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));

/** Resolves to the rejection of `promise`, or undefined if it resolved. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error;
  }
}

async function assertRejected401(t: Test, promise: Promise<unknown>, message?: RegExp) {
  const error = await rejectionOf(promise);
  t.ok(error instanceof AppError, 'rejected with an AppError');
  t.match(error, { statusCode: 401, code: ErrorCode.AuthenticationFailed });
  if (message) t.match((error as Error).message, message);
}

/** A JSON POST signed by our own signer at NOW; like the Node SDK it signs every header but the user agent. */
function signedPost(overrides: Partial<SignedRequest> = {}): SignedRequest {
  const req: SignedRequest = {
    method: 'POST',
    url: `/v1/private-certificate-authorities/${URN}/export?type=pem&b=2&b=1`,
    headers: {
      host: 'pca.example.test',
      'content-type': 'application/json',
      'x-domain-id': '0123456789abcdef0123456789abcdef',
      'x-sdk-date': formatSdkDate(NOW),
      'user-agent': 'test',
    },
    body: bytes('{"type":"PEM"}\n'),
    ...overrides,
  };
  const signedHeaders = Object.keys(req.headers).filter((name) => name !== 'user-agent');
  const authorization = signRequest(req, 'AK1', 'SK1', signedHeaders);
  return { ...req, headers: { ...req.headers, authorization } };
}

t.test('§3.1 test vectors reproduce byte-exactly', async (t) => {
  const common = { 'x-sdk-date': '20060102T150405Z', test_underscore: 'TEST_VALUE', host: 'example.huaweicloud.com' };
  const get: SignedRequest = { method: 'GET', url: '/path?limit=1', headers: common, body: new Uint8Array() };
  const post: SignedRequest = {
    method: 'POST',
    url: '/path?key=value',
    headers: { ...common, 'content-type': 'application/json' },
    body: bytes('{"Name":"test","Id":1}\n'),
  };

  t.equal(canonicalRequest(get, ['x-sdk-date']), `GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n${EMPTY_SHA256}`);
  t.equal(
    canonicalRequest(post, ['x-sdk-date']),
    'POST\n/path/\nkey=value\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n' +
      'a29d7b4c5efd1a22011d69fd7b7aee76fe51e4083c609244228de258afd61289',
  );
  t.equal(
    stringToSign('20060102T150405Z', 'x'),
    'SDK-HMAC-SHA256\n20060102T150405Z\n2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
  );
  t.equal(
    signRequest(get, 'AccessKey', 'SecretKey', ['x-sdk-date']),
    'SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, ' +
      'Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624',
  );
  t.equal(
    signRequest(post, 'AccessKey', 'SecretKey', ['X-Sdk-Date']),
    'SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, ' +
      'Signature=cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59',
  );

  const vectorTime = new Date('2006-01-02T15:04:05Z');
  for (const req of [get, post]) {
    const authorization = signRequest(req, 'AccessKey', 'SecretKey', ['x-sdk-date']);
    const verified = await verifySdkSignature({ ...req, headers: { ...req.headers, authorization } }, lookupSecret, vectorTime);
    t.match(verified, { access: 'AccessKey', algorithm: 'SDK-HMAC-SHA256' }, `${req.method} vector verifies`);
    t.equal(verified.use.validUntil.getTime(), vectorTime.getTime() + 15 * 60_000, 'usable until X-Sdk-Date + 15 minutes');
  }
});

t.test('canonicalization of path, query and headers', async (t) => {
  const at = (url: string, headers: SignedRequest['headers'] = {}) =>
    canonicalRequest({ method: 'GET', url, headers, body: new Uint8Array() }, Object.keys(headers)).split('\n');

  t.equal(at(`/v1/ca/${URN}`)[1], `/v1/ca/${URN.replaceAll(':', '%3A')}/`, 'a raw : becomes %3A');
  t.equal(at(`/v1/ca/${URN.replaceAll(':', '%3a')}`)[1], at(`/v1/ca/${URN}`)[1], '%3a and : are the same');
  t.equal(at('/a%20b/%C3%A9%2F/~x')[1], '/a%20b/%C3%A9%2F/~x/', 'escapes re-emitted upper-case, %2F kept');
  t.equal(at('/a%zz/100%')[1], '/a%25zz/100%25/', 'a stray % is a literal %');
  t.equal(at('/')[1], '/');
  t.equal(at('/x/')[1], '/x/', 'no second trailing slash');

  t.equal(at('/p?name=my+ca&k=a%2Bb')[2], 'k=a%2Bb&name=my%20ca', '+ is a space (Go SDK), %2B a plus');
  t.equal(at("/p?s=!'()*~")[2], 's=%21%27%28%29%2A~', "Node's raw !'()* are escaped");
  t.equal(at('/p?b=2&a=z&b=10&b=1&a=')[2], 'a=&a=z&b=1&b=10&b=2', 'names then values sorted');
  t.equal(at('/p?flag&x=1&&')[2], 'flag=&x=1', 'a bare name has an empty value; empty pairs are skipped');
  t.equal(at('/p?')[2], '');

  const headers = at('/p', { 'x-b': ['  2', '1 '], 'x-a': ' v ' });
  t.same(headers.slice(3, 7), ['x-b:1', 'x-b:2', 'x-a:v', ''], 'one trimmed line per value, sorted, in signed order');
  t.equal(headers[7], 'x-b;x-a');
});

t.test('verification accepts requests signed by the Node SDK signer (AKSKSigner driven directly)', async (t) => {
  const credential = new GlobalCredentials().withAk('AK1').withSk('SK1');

  /** Signs as BaseCredentials.processAuthRequest does and sends as DefaultHttpClient does. */
  function signWithSdk(method: string, path: string, queryParams: Record<string, unknown>, data?: object) {
    const sentQuery = stringifyQuery(structuredClone(queryParams) as Record<string, string>); // before the signer sorts
    const request = {
      method,
      endpoint: `https://pca.example.test${path}`,
      headers: { 'X-Domain-Id': '0123456789abcdef0123456789abcdef', ...(data && { 'content-type': 'application/json' }) },
      queryParams,
      data,
    };
    const signed = AKSKSigner.sign(request as never, credential) as Record<string, string>;
    const headers = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name.toLowerCase(), value]));
    const url = sentQuery ? `${path}?${sentQuery}` : path;
    const body = data === undefined ? new Uint8Array() : bytes(JSON.stringify(data));
    return { method, url, headers, body };
  }

  const requests = [
    signWithSdk('GET', `/v1/private-certificate-authorities/${URN}`, {
      limit: 10,
      type: ['SUBORDINATE', 'ROOT', 'INTERMEDIATE'],
      name: "my ca+1!'()*é",
    }),
    signWithSdk('POST', '/v1/private-certificate-authorities', {}, { type: 'ROOT', distinguished_name: { common_name: 'é' } }),
    signWithSdk('DELETE', '/v1/private-certificate-authorities/tags/delete', {}, { tags: [{ key: 'a' }] }),
  ];
  for (const req of requests) {
    t.match(
      await verifySdkSignature(req, lookupSecret, new Date()),
      { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
      `${req.method} ${req.url}`,
    );
    const signed = parseSdkAuthorization(req.headers.authorization).signedHeaders.join(';');
    t.equal(signed, req.body.length ? 'content-type;host;x-domain-id;x-sdk-date' : 'host;x-domain-id;x-sdk-date');
  }
  const urnAsEscaped = { ...requests[0], url: requests[0].url.replaceAll(':', '%3A') };
  t.match(
    await verifySdkSignature(urnAsEscaped, lookupSecret, new Date()),
    { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
    'URN sent as %3A',
  );
});

t.test('verification accepts what the Node SDK puts on the wire (HcClient over HTTP)', async (t) => {
  const received: SignedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: new Uint8Array(Buffer.concat(chunks)) });
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const client = new HcClient(new DefaultHttpClient({}, [endpoint]))
    .withEndpoints([endpoint])
    .withCredential(new GlobalCredentials().withAk('AK1').withSk('SK1').withDomainId('d'.repeat(32)));
  const send = (options: object) => client.sendRequest({ pathParams: {}, queryParams: {}, headers: {}, ...options } as never);

  await send({
    method: 'GET',
    url: '/v1/private-certificate-authorities/{ca_id}',
    pathParams: { ca_id: URN },
    queryParams: { limit: 10, type: ['ROOT', 'INTERMEDIATE'], name: 'a b+c' },
  });
  await send({ method: 'POST', url: '/v1/private-certificates', contentType: 'application/json;charset=UTF-8', data: { a: 'é' } });
  await send({
    method: 'DELETE',
    url: '/v1/private-certificates/{id}',
    pathParams: { id: 'x' },
    contentType: 'application/json',
    data: { k: 1 },
  });
  await send({ method: 'POST', url: '/v1/raw', contentType: 'text/plain', data: 'hello' });

  t.equal(received.length, 4);
  for (const req of received) {
    t.match(
      await verifySdkSignature(req, lookupSecret, new Date()),
      { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
      `${req.method} ${req.url}`,
    );
    t.comment(`${req.method} ${req.url} signs ${parseSdkAuthorization(String(req.headers.authorization)).signedHeaders.join(';')}`);
  }
  t.match(received[0].url, /\/pca:cn-north-4:[^?]*\?limit=10&type=INTERMEDIATE&type=ROOT&name=a%20b%2Bc$/, 'what the SDK sends');
  t.equal(received[3].headers['x-sdk-content-sha256'], 'UNSIGNED-PAYLOAD', 'non-JSON bodies are unsigned');

  await assertRejected401(t, verifySdkSignature(received[0], lookupSecret, new Date(), { hostOverride: 'elsewhere' }));
  const proxied = { ...received[1], headers: { ...received[1].headers, host: 'internal:8080' } };
  const signedHost = String(received[1].headers.host);
  t.match(
    await verifySdkSignature(proxied, lookupSecret, new Date(), { hostOverride: signedHost }),
    { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
    'hostOverride',
  );
});

t.test('any change to a signed part gets 401', async (t) => {
  const original = signedPost();
  t.match(await verifySdkSignature(original, lookupSecret, NOW), { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' }, 'the original verifies');
  const unsignedChange = { ...original, headers: { ...original.headers, 'user-agent': 'other' } };
  t.match(
    await verifySdkSignature(unsignedChange, lookupSecret, NOW),
    { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
    'unsigned headers may change',
  );

  const flipped = (body: Uint8Array) => body.map((byte, i) => (i === 3 ? byte ^ 1 : byte));
  const auth = String(original.headers.authorization);
  const mutations: Record<string, SignedRequest> = {
    body: { ...original, body: flipped(original.body) },
    path: { ...original, url: original.url.replace('/export', '/exporT') },
    'query value': { ...original, url: original.url.replace('type=pem', 'type=pen') },
    'query name': { ...original, url: original.url.replace('b=1', 'c=1') },
    method: { ...original, method: 'PUT' },
    'signed header value': { ...original, headers: { ...original.headers, 'x-domain-id': 'f'.repeat(32) } },
    date: { ...original, headers: { ...original.headers, 'x-sdk-date': formatSdkDate(new Date(NOW.getTime() + 1000)) } },
    signature: { ...original, headers: { ...original.headers, authorization: auth.slice(0, -1) + (auth.endsWith('0') ? '1' : '0') } },
    access: { ...original, headers: { ...original.headers, authorization: auth.replace('Access=AK1', 'Access=AccessKey') } },
    'signed header removed': { ...original, headers: { ...original.headers, 'x-domain-id': undefined } },
  };
  for (const [what, req] of Object.entries(mutations)) {
    t.test(what, (t) => assertRejected401(t, verifySdkSignature(req, lookupSecret, NOW)));
  }
  const mismatch = await rejectionOf(verifySdkSignature(mutations.body, lookupSecret, NOW));
  t.match((mismatch as Error).message, /canonical request was:\nPOST\n\/v1\/private-certificate-authorities\/pca%3A/);
  t.notMatch((mismatch as Error).message, /SK1/, 'no secret in the message');
  await assertRejected401(
    t,
    verifySdkSignature(original, async () => undefined, NOW),
    /unknown access key/,
  );
});

t.test("a signature mismatch shows the canonical request, but not a signed credential header's value (it is logged)", async (t) => {
  const token = 'gQpIaWdobHktc2VjcmV0LXRlbXBvcmFyeS10b2tlbg';
  const req = signedPost({ headers: { ...signedPost().headers, 'x-security-token': token, 'x-auth-token': `${token}-auth` } });
  const { authorization: _signedWithOtherHeaders, ...headers } = req.headers;
  const authorization = signRequest(
    { ...req, headers },
    'AK1',
    'wrong secret',
    Object.keys(headers).filter((name) => name !== 'user-agent'),
  );
  const error = (await rejectionOf(verifySdkSignature({ ...req, headers: { ...headers, authorization } }, lookupSecret, NOW))) as Error;
  t.match(error.message, /signature mismatch; the server's canonical request was:\nPOST\n/);
  t.match(error.message, /\nx-security-token:<redacted, 42 characters>\n/);
  t.match(error.message, /\nx-auth-token:<redacted, 47 characters>\n/);
  t.notOk(error.message.includes(token), 'neither token appears');
  t.match(error.message, /\nx-sdk-date:\d{8}T\d{6}Z\n/, 'other headers are shown as the server read them');
});

t.test('X-Sdk-Date: present, well-formed, signed, within 15 minutes', async (t) => {
  const minute = 60_000;
  const signedAt = (offsetMs: number) =>
    signedPost({ headers: { host: 'h', 'x-sdk-date': formatSdkDate(new Date(NOW.getTime() + offsetMs)) } });
  for (const offset of [-15 * minute, 15 * minute, -(14 * minute + 59_000)]) {
    t.match(
      await verifySdkSignature(signedAt(offset), lookupSecret, NOW),
      { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
      `${offset / minute} min`,
    );
  }
  await assertRejected401(t, verifySdkSignature(signedAt(-16 * minute), lookupSecret, NOW), /15 minutes/);
  await assertRejected401(t, verifySdkSignature(signedAt(16 * minute), lookupSecret, NOW), /15 minutes/);
  await assertRejected401(t, verifySdkSignature(signedAt(-1000), lookupSecret, NOW, { maxSkewMs: 500 }));

  const good = signedPost();
  const withDate = (date: string | string[] | undefined) => ({ ...good, headers: { ...good.headers, 'x-sdk-date': date } });
  await assertRejected401(t, verifySdkSignature(withDate(undefined), lookupSecret, NOW), /missing/);
  for (const bad of ['2024-05-06T07:08:09Z', '20240506T070809', '20241306T070809Z', '20240506T240000Z', '20240506t070809z', '']) {
    await assertRejected401(t, verifySdkSignature(withDate(bad), lookupSecret, NOW), /YYYYMMDDTHHMMSSZ/);
  }
  await assertRejected401(t, verifySdkSignature(withDate([formatSdkDate(NOW), formatSdkDate(NOW)]), lookupSecret, NOW), /repeat/);

  const req: SignedRequest = { method: 'GET', url: '/p', headers: { host: 'h', 'x-sdk-date': formatSdkDate(NOW) }, body: new Uint8Array() };
  const unsignedDate = { ...req, headers: { ...req.headers, authorization: signRequest(req, 'AK1', 'SK1', ['host']) } };
  await assertRejected401(t, verifySdkSignature(unsignedDate, lookupSecret, NOW), /x-sdk-date must be among SignedHeaders/);
});

t.test('malformed Authorization headers get 401', async (t) => {
  const good = String(signedPost().headers.authorization);
  const signature = good.slice(-64);
  t.same(
    parseSdkAuthorization(good.replaceAll(', ', ',')).signedHeaders,
    ['content-type', 'host', 'x-domain-id', 'x-sdk-date'],
    'spaces optional',
  );
  const malformed = [
    '',
    'SDK-HMAC-SHA256',
    `SDK-HMAC-SHA256 SignedHeaders=x-sdk-date, Signature=${signature}`,
    `SDK-HMAC-SHA256 Access=AK1, Signature=${signature}`,
    'SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date',
    `SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=${signature.slice(1)}`,
    `SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=${signature}0`,
    `SDK-HMAC-SHA256 Access=AK1, SignedHeaders=x-sdk-date, Signature=${signature.slice(1)}g`,
    good.replace('SDK-HMAC-SHA256', 'SDK-HMAC-SHA1'),
    good.replace('SDK-HMAC-SHA256', 'sdk-hmac-sha256'),
    `Bearer ${signature}`,
    good.replace('SignedHeaders=', 'SignedHeaders=;'),
    good.replace('x-sdk-date', 'X-Sdk-Date'),
    `${good}, Extra=1`,
  ];
  for (const authorization of malformed) {
    await assertRejected401(
      t,
      verifySdkSignature({ ...signedPost(), headers: { ...signedPost().headers, authorization } }, lookupSecret, NOW),
    );
  }
  await assertRejected401(
    t,
    verifySdkSignature({ ...signedPost(), headers: { ...signedPost().headers, authorization: undefined } }, lookupSecret, NOW),
    /missing/,
  );
  await assertRejected401(
    t,
    verifySdkSignature({ ...signedPost(), headers: { ...signedPost().headers, authorization: [good, good] } }, lookupSecret, NOW),
  );
});

t.test('X-Sdk-Content-Sha256', async (t) => {
  const unsigned = signedPost({
    headers: { host: 'h', 'x-sdk-date': formatSdkDate(NOW), 'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD' },
  });
  t.ok(canonicalRequest(unsigned, ['host']).endsWith('\nUNSIGNED-PAYLOAD'), 'the declared value is the payload hash');
  t.match(
    await verifySdkSignature({ ...unsigned, body: bytes('anything') }, lookupSecret, NOW),
    { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
    'UNSIGNED-PAYLOAD honoured',
  );

  const body = bytes('{"a":1}');
  const declared = createHash('sha256').update(body).digest('hex');
  const hashed = signedPost({ headers: { host: 'h', 'x-sdk-date': formatSdkDate(NOW), 'x-sdk-content-sha256': declared }, body });
  t.match(
    await verifySdkSignature(hashed, lookupSecret, NOW),
    { access: 'AK1', algorithm: 'SDK-HMAC-SHA256' },
    'a true declared hash verifies',
  );
  await assertRejected401(
    t,
    verifySdkSignature({ ...hashed, body: bytes('{"a":2}') }, lookupSecret, NOW),
    /does not match the request body/,
  );

  // Someone replaying a request signed without the header cannot swap its body by declaring the old hash.
  const plain = signedPost();
  const oldHash = createHash('sha256').update(plain.body).digest('hex');
  const swapped = { ...plain, body: bytes('{"type":"DER"}'), headers: { ...plain.headers, 'x-sdk-content-sha256': oldHash } };
  await assertRejected401(t, verifySdkSignature(swapped, lookupSecret, NOW), /does not match/);
});

t.test('fuzz: mutated Authorization headers and URLs only ever give AppError 401', async (t) => {
  const CASES = fuzzCases(3000);
  const { random, pick } = fuzzer(t, 0x5eed);
  const alphabet = [
    '%',
    '%2',
    '%zz',
    '%3A',
    '+',
    '?',
    '&',
    '=',
    '/',
    ':',
    ';',
    ',',
    ' ',
    'a',
    'Z',
    '0',
    'é',
    '\uD800',
    '\u0000',
    '\n',
    'Access=',
    'Signature=',
    'f',
  ];
  const mutate = (text: string) => {
    let out = text;
    for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
      const at = Math.floor(random() * (out.length + 1));
      const op = random();
      if (op < 0.4) out = out.slice(0, at) + pick(alphabet) + out.slice(at);
      else if (op < 0.7) out = out.slice(0, at) + out.slice(at + 1);
      else out = out.slice(0, at) + pick(alphabet) + out.slice(at + 1);
    }
    return out;
  };

  const base = signedPost();
  const outcomes = { accepted: 0, rejected401: 0 };
  for (let i = 0; i < CASES; i++) {
    const kind = i % 3;
    const authorization = kind === 1 ? String(base.headers.authorization) : mutate(String(base.headers.authorization));
    const url = kind === 0 ? base.url : mutate(base.url);
    const req = { ...base, url, headers: { ...base.headers, authorization } };
    const error = await rejectionOf(verifySdkSignature(req, lookupSecret, NOW));
    if (error === undefined) {
      outcomes.accepted++;
    } else if (error instanceof AppError && error.statusCode === 401 && error.code === ErrorCode.AuthenticationFailed) {
      outcomes.rejected401++;
    } else {
      t.fail(`unexpected error for ${JSON.stringify(req.url)} / ${JSON.stringify(authorization)}: ${String(error)}`);
      return;
    }
  }
  t.equal(outcomes.accepted + outcomes.rejected401, CASES);
  t.ok(outcomes.rejected401 > CASES * 0.83, `mostly rejected (${JSON.stringify(outcomes)})`);
});
