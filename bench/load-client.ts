/** The child process of load.ts: runs autocannon with the spec it is sent and sends back the figures. */
import autocannon from 'autocannon';
import type { ClientReport, LoadMessage } from './load.ts';

process.once('message', async (message) => {
  const spec = message as LoadMessage;
  const requests = spec.bodies.map((body) => ({ body: Buffer.from(body, 'base64') }));
  const cpuStart = process.cpuUsage();
  process.send!('started');
  const result = await autocannon({
    url: spec.url,
    method: spec.method,
    headers: spec.headers,
    connections: spec.concurrency,
    duration: spec.seconds,
    requests,
    idReplacement: spec.uniqueIds ?? false,
  });
  const cpu = process.cpuUsage(cpuStart);
  const report: ClientReport = {
    elapsedSeconds: result.duration,
    requests: result.requests.total,
    failures: result.non2xx + result.errors + result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    statuses: Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, { count }]) => [status, count ?? 0])),
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.send!(report, () => process.exit(0));
});
