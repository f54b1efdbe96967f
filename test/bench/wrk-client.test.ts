/**
 * The benchmarks' wrk client (bench/wrk-client.ts) against a real wrk and a local HTTP server: the bodies arrive byte
 * for byte (binary ones too, as the OCSP benchmark sends), `[<id>]` becomes an id unique to each request, GETs carry
 * no body, and the report counts the answers by status as the server gave them. Skipped with the reason where wrk is
 * missing (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import type { LoadSpec } from '../../bench/load.ts';
import { luaString, readWrkOutput, runWrk } from '../../bench/wrk-client.ts';

interface Received {
  method: string;
  url: string;
  id: string | undefined;
  body: Buffer;
}

/** A server that records each request and answers 201 to bodies starting with a zero byte, 429 to the others. */
async function recordingServer(t: Test) {
  const received: Received[] = [];
  const answered: Record<string, number> = {};
  const server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: request.method!, url: request.url!, id: request.headers['x-id'] as string | undefined, body });
      const status = body.length > 0 && body[0] !== 0 ? 429 : 201;
      answered[status] = (answered[status] ?? 0) + 1;
      response.writeHead(status).end('answer');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, answered };
}

const wrkMissing = spawnSync('wrk', ['--version']).error ? 'wrk is not installed (apt-get install wrk)' : false;
const run = (spec: LoadSpec) => runWrk(spec, async () => undefined);

t.test('luaString writes every byte so that Lua reads it back exactly', async (t) => {
  t.equal(luaString(Buffer.from('a"b\\c')), '"a\\034b\\092c"');
  t.equal(luaString(Uint8Array.of(0, 10, 127, 255, 0x41)), '"\\000\\010\\127\\255A"');
});

t.test('readWrkOutput reads the statuses, counts refusals and errors as failures, and reads the CPU time', async (t) => {
  const output = [
    'Running 1s test @ http://127.0.0.1:1',
    'WRK_REPORT {"requests": 12, "microseconds": 1500000, "p50": 1.25, "p99": 9.5, "unanswered": 2, "statuses": {"201": 9, "429": 3}}',
    '0m0.001s 0m0.002s',
    '0m1.250s 0m0.500s',
  ].join('\n');
  t.same(readWrkOutput(output), {
    elapsedSeconds: 1.5,
    requests: 12,
    failures: 5,
    p50: 1.25,
    p99: 9.5,
    statuses: { 201: 9, 429: 3 },
    clientCpuMs: 1750,
  });
  t.throws(() => readWrkOutput('no report here\n0m0.0s 0m0.0s'), /printed no report/);
});

t.test('POSTs: each body byte for byte, [<id>] unique per request, answers counted by status', { skip: wrkMissing }, async (t) => {
  const { url, received, answered } = await recordingServer(t);
  const binary = Uint8Array.from([0, 1, 2, 34, 92, 10, 13, 255, 128]);
  const text = Buffer.from('refused "please" \\ id=[<id>]');
  const report = await run({
    url: `${url}/sign?x=1`,
    method: 'POST',
    headers: { 'x-id': 'key-[<id>]', 'content-type': 'application/octet-stream' },
    bodies: [binary, text],
    concurrency: 4,
    seconds: 1,
    uniqueIds: true,
  });
  t.ok(received.length > 20, `the server got ${received.length} requests`);
  t.ok(
    received.every(({ method, url }) => method === 'POST' && url === '/sign?x=1'),
    'every request a POST to the path and query',
  );
  const ids = received.map(({ id }) => id);
  t.equal(new Set(ids).size, ids.length, 'every request its own id');
  t.ok(
    received.every(
      ({ id, body }) =>
        /^key-[0-9a-f]{12}-\d+-\d+$/.test(id ?? '') &&
        (body.equals(binary) || body.toString() === `refused "please" \\ id=${id!.slice(4)}`),
    ),
    'each body one of those given, its [<id>] the same id as its header',
  );
  t.ok(received.some(({ body }) => body.equals(binary)) && received.some(({ body }) => body[0] !== 0), 'both bodies sent');
  t.equal(report.statuses['201']! + report.statuses['429']!, report.requests, 'every counted answer has its status');
  t.ok(
    report.statuses['201']! <= answered['201']! && report.statuses['429']! <= answered['429']!,
    'no answer counted the server did not give',
  );
  t.ok(answered['201']! - report.statuses['201']! <= 4, 'at most the requests in flight at the end go uncounted');
  t.equal(report.failures, report.statuses['429'], 'the refusals are the failures');
  t.ok(report.p99 >= report.p50 && report.p50 > 0, `latency p50 ${report.p50} ms, p99 ${report.p99} ms`);
  t.ok(report.clientCpuMs > 0, `wrk used ${report.clientCpuMs} ms of CPU`);
});

t.test('two runs of one spec share no id (a warm-up and the measured load after it)', { skip: wrkMissing }, async (t) => {
  const { url, received } = await recordingServer(t);
  const spec: LoadSpec = {
    url,
    method: 'POST',
    headers: { 'x-id': '[<id>]' },
    bodies: [Uint8Array.of(0)],
    concurrency: 2,
    seconds: 1,
    uniqueIds: true,
  };
  await run(spec);
  const first = new Set(received.map(({ id }) => id));
  await run(spec);
  const second = received.slice(first.size).map(({ id }) => id);
  t.ok(first.size > 10 && second.length > 10, `${first.size} and ${second.length} requests`);
  t.notOk(
    second.some((id) => first.has(id)),
    'no id of the second run was sent in the first',
  );
});

t.test('without uniqueIds the headers go as given; a GET carries no body', { skip: wrkMissing }, async (t) => {
  const { url, received } = await recordingServer(t);
  const report = await run({
    url: `${url}/ocsp/MEMwQTA%2FMD0wOzAJ`,
    method: 'GET',
    headers: { 'x-id': 'fixed-[<id>]' },
    bodies: [new Uint8Array(0)],
    concurrency: 1,
    seconds: 1,
  });
  t.ok(received.length > 10, `the server got ${received.length} requests`);
  t.ok(
    received.every(
      ({ method, url, id, body }) => method === 'GET' && url === '/ocsp/MEMwQTA%2FMD0wOzAJ' && id === 'fixed-[<id>]' && body.length === 0,
    ),
    'every request the same bodiless GET, its header as given',
  );
  t.equal(report.statuses['201'], report.requests);
  t.equal(report.failures, 0);
});
