/** The closed-loop load driver shared by the HTTP benchmarks: N requests in flight for a while, then a table row. */
import os from 'node:os';
import { performance } from 'node:perf_hooks';

/** Keeps `concurrency` calls of `request(i)` in flight for `seconds`; `request` resolves to the HTTP status. */
export async function drive(concurrency: number, seconds: number, request: (index: number) => Promise<number>, okStatus = 200) {
  const latencies: number[] = [];
  let failures = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; performance.now() < deadline; i += concurrency) {
        const t0 = performance.now();
        const status = await request(i);
        latencies.push(performance.now() - t0);
        if (status !== okStatus) failures++;
      }
    }),
  );
  return { elapsedSeconds: (performance.now() - started) / 1000, latencies: latencies.sort((a, b) => a - b), failures };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** A markdown header and row for RESULTS.md: throughput, p50/p99 latency and the machine's load average. */
export function resultTable(unit: string, concurrency: number, result: Awaited<ReturnType<typeof drive>>): string {
  const { elapsedSeconds, latencies, failures } = result;
  const load = os.loadavg().map((value) => value.toFixed(2)).join(' ');
  return [
    `| concurrency | seconds | requests | failures | ${unit} | p50 ms | p99 ms | load avg |`,
    '|---|---|---|---|---|---|---|---|',
    `| ${concurrency} | ${elapsedSeconds.toFixed(1)} | ${latencies.length} | ${failures} | ${((latencies.length - failures) / elapsedSeconds).toFixed(0)} | ` +
      `${percentile(latencies, 50).toFixed(1)} | ${percentile(latencies, 99).toFixed(1)} | ${load} |`,
  ].join('\n');
}
