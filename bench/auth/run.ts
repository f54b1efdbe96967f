/**
 * What an AK/SK signature (Huawei SDK clients, the cert-manager issuer) costs a request beyond a bearer token: the same
 * GET of a CA, by token and then signed, against a started server over a real Postgres (DATABASE_URL, else a
 * throwaway cluster). The token row is the peer in the same run; the ratio of the server's CPU per request is the
 * figure that travels between machines. A signed GET changes nothing and is not recorded as used, so one signature
 * serves the whole load (within X-Sdk-Date's 15 minutes).
 *
 * Then the cert-manager issuer's own call, one at a time: a certificate issued from a CSR (POST, so each signature is
 * made anew and claimed once), by token and signed, in alternating slices of 50 requests from this process (client and
 * server share it: the difference between the rows is what the signature costs, the client's HMAC included).
 *
 *   npx tsx bench/auth/run.ts [seconds=8] [concurrency=16]
 */
import { randomUUID } from 'node:crypto';
import { drive, type LoadResult, resultTable } from '../load.ts';
import { startBenchServer } from '../bench-server.ts';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../../test/certificates/support.ts';

const seconds = Number(process.argv[2] ?? 8);
const concurrency = Number(process.argv[3] ?? 16);

const server = await startBenchServer();
try {
  const { subId } = await server.p256Hierarchy('auth');
  const { credential } = (await server.call('POST', '/v1/access-keys', {})) as unknown as {
    credential: { access: string; secret: string };
  };
  const path = `/v1/private-certificate-authorities/${subId}`;
  const url = `${server.base}${path}`;
  const signedHeaders = { host: new URL(url).host, 'x-sdk-date': formatSdkDate(new Date()) };
  const authorization = signRequest(
    { method: 'GET', url: path, headers: signedHeaders, body: new Uint8Array() },
    credential.access,
    credential.secret,
    ['host', 'x-sdk-date'],
  );
  const settings: [string, Record<string, string>][] = [
    ['bearer token', { authorization: server.headers.authorization }],
    ['AK/SK signature', { 'x-sdk-date': signedHeaders['x-sdk-date'], authorization }],
  ];
  const rows: [string, LoadResult][] = [];
  for (const [setting, headers] of settings) {
    const answer = await fetch(url, { headers });
    if (!answer.ok) throw new Error(`${setting}: ${answer.status} ${await answer.text()}`);
    const spec = { url, method: 'GET' as const, headers, bodies: [new Uint8Array(0)], concurrency, seconds };
    await drive({ ...spec, seconds: 2 }, server.serverCpuMs); // warm-up, not recorded
    rows.push([`GET a CA, ${setting}`, await drive(spec, server.serverCpuMs)]);
  }
  console.log(resultTable('requests/s', concurrency, ...rows));
  const cpu = (at: number) => rows[at][1].cpuPerRequest?.server ?? Number.NaN;
  console.log(`\nserver CPU per request, AK/SK / token: ${(cpu(1) / cpu(0)).toFixed(2)} (${cpu(1).toFixed(3)} / ${cpu(0).toFixed(3)} ms)`);

  const { csr } = await opensslCsr(await scratch('auth-bench'), 'leaf', [...KEY_ARGS.p256]);
  const issuePath = '/v1/private-certificates/csr';
  const body = JSON.stringify({ issuer_id: subId, csr, validity: { type: 'DAY', value: 30 } });
  const byToken = () => server.headers;
  const bySignature = () => {
    // A request id of its own in the signed headers: every signature differs, so none is a replay of another.
    const headers = {
      host: new URL(url).host,
      'content-type': 'application/json',
      'x-sdk-date': formatSdkDate(new Date()),
      'x-request-id': randomUUID(),
    };
    const signed = signRequest({ method: 'POST', url: issuePath, headers, body: Buffer.from(body) }, credential.access, credential.secret, [
      ...Object.keys(headers),
    ]);
    return { ...headers, authorization: signed };
  };
  const lone = { token: { cpuMs: 0, latencies: [] as number[] }, signature: { cpuMs: 0, latencies: [] as number[] } };
  const slice = async (headersOf: () => Record<string, string>, into: (typeof lone)['token']) => {
    for (let i = 0; i < 50; i++) {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      const answer = await fetch(`${server.base}${issuePath}`, { method: 'POST', headers: headersOf(), body });
      if (answer.status !== 200) throw new Error(`${answer.status} ${await answer.text()}`);
      await answer.arrayBuffer();
      into.latencies.push(performance.now() - started);
      const used = process.cpuUsage(cpuBefore);
      into.cpuMs += (used.user + used.system) / 1000;
    }
  };
  await slice(byToken, { cpuMs: 0, latencies: [] }); // warm-up, not recorded
  await slice(bySignature, { cpuMs: 0, latencies: [] });
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    await slice(byToken, lone.token);
    await slice(bySignature, lone.signature);
  }
  const summary = ({ cpuMs, latencies }: (typeof lone)['token']) => {
    const sorted = [...latencies].sort((a, b) => a - b);
    return { requests: sorted.length, cpu: cpuMs / sorted.length, p50: sorted[Math.floor(sorted.length / 2)] };
  };
  console.log('\n| lone issuance from a CSR, one at a time | requests | CPU ms per request (client and server) | p50 ms |');
  console.log('|---|---|---|---|');
  for (const [setting, figures] of Object.entries(lone)) {
    const { requests, cpu: perRequest, p50 } = summary(figures);
    console.log(
      `| ${setting === 'token' ? 'bearer token' : 'AK/SK signature'} | ${requests} | ${perRequest.toFixed(3)} | ${p50.toFixed(2)} |`,
    );
  }
  const extra = summary(lone.signature).cpu - summary(lone.token).cpu;
  console.log(`\nwhat a signature adds to a lone issuance: ${extra.toFixed(3)} ms of CPU`);
} finally {
  await server.close();
}
process.exit(0);
