/**
 * The load driver shared by the HTTP benchmarks: a client in its own process keeps N requests in flight for a while,
 * so the server under test does not share its event loop (or its garbage) with it. The client is autocannon (in a
 * child Node process, load-client.ts), or wrk with BENCH_CLIENT=wrk (wrk-client.ts).
 */
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { childrenOf } from '../test/helpers/server-process.ts';
import { runWrk } from './wrk-client.ts';

export interface LoadSpec {
  url: string;
  method: 'POST' | 'GET';
  headers: Record<string, string>;
  /** Sent in turn by every connection. */
  bodies: Uint8Array[];
  concurrency: number;
  seconds: number;
  /** Replace `[<id>]` in each request (headers included) with an id unique to that request, e.g. an Idempotency-Key. */
  uniqueIds?: boolean;
}

export interface LoadResult {
  elapsedSeconds: number;
  requests: number;
  /** Responses with a status other than 2xx, plus connection errors and timeouts. */
  failures: number;
  p50: number;
  p99: number;
  /** Responses per HTTP status code (connection errors and timeouts are not here). */
  statuses: Record<string, number>;
  /** The machine's load average (1, 5, 15 min) when the load ended. */
  load: string;
  /** CPU milliseconds per request: this (server) process, the load client, and the rest of the machine (the database). */
  cpuPerRequest?: { server: number; client: number; rest: number };
}

/** The message the child sends back (bodies travel as base64 the other way). */
export type LoadMessage = Omit<LoadSpec, 'bodies'> & { bodies: string[] };

/** What the child reports: the load figures and its own CPU time (ms). */
export type ClientReport = Omit<LoadResult, 'cpuPerRequest' | 'load'> & { clientCpuMs: number };

/** Busy CPU milliseconds of the whole machine since boot (Linux /proc/stat: all but idle and iowait). */
function machineBusyMs(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1000) / 100;
}

const cpuMs = (usage: NodeJS.CpuUsage): number => (usage.user + usage.system) / 1000;

/** CPU milliseconds another process has used so far (Linux /proc/<pid>/stat: utime + stime), e.g. a peer server's. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, from the third (state) on: utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** processCpuMs of `pid` and its children (a WORKERS > 1 server: the primary and its workers). */
export function processTreeCpuMs(pid: number): number {
  let total = processCpuMs(pid);
  for (const child of childrenOf(pid)) {
    try {
      total += processCpuMs(child);
    } catch {
      // exited since the listing
    }
  }
  return total;
}

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));

/**
 * With BENCH_CPU_PROFILE=file.cpuprofile, the server process is profiled while each load runs (not during set-up),
 * into file-1.cpuprofile, file-2.cpuprofile... one per load; open them in Chrome DevTools or any .cpuprofile viewer.
 */
let profiles = 0;
function profiler(file: string | undefined) {
  if (!file) return { start: async () => undefined, stop: async () => undefined };
  const session = new Session();
  session.connect();
  return {
    async start() {
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    },
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(file.replace('.cpuprofile', `-${++profiles}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** A load client: runs `spec`, calling `started` once the load is under way, and reports. */
type LoadClient = (spec: LoadSpec, started: () => Promise<void>) => Promise<ClientReport>;

/** autocannon in a child process (load-client.ts). */
const runAutocannon: LoadClient = (spec, started) => {
  const child = fork(CLIENT, { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const message: LoadMessage = { ...spec, bodies: spec.bodies.map((body) => Buffer.from(body).toString('base64')) };
  return new Promise((resolve, reject) => {
    child.on('message', async (message) => {
      if (message === 'started') await started();
      else resolve(message as ClientReport);
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the load client exited with ${code} before reporting`)));
    child.send(message);
  });
};

const CLIENTS: Record<string, LoadClient> = { autocannon: runAutocannon, wrk: runWrk };

/** BENCH_CLIENT's load client: autocannon (the default, every RESULTS section before 2026-12-05's wrk runs) or wrk. */
function loadClient(): LoadClient {
  const name = process.env.BENCH_CLIENT || 'autocannon';
  if (!Object.hasOwn(CLIENTS, name)) throw new Error(`BENCH_CLIENT=${name}: expected one of ${Object.keys(CLIENTS).join(', ')}`);
  return CLIENTS[name]!;
}

/**
 * BENCH_WARMUP's seconds (3 by default; 0 for none): how long `warmUp` runs. A fresh Node server compiles its hot
 * paths under the first seconds of load, where a Go peer starts compiled; a server in service is warm.
 */
function warmUpSeconds(): number {
  const text = process.env.BENCH_WARMUP || '3';
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0) throw new Error(`BENCH_WARMUP=${text}: expected whole seconds, 0 or more`);
  return seconds;
}

/** Runs `spec`'s load unmeasured for BENCH_WARMUP seconds, with the same client, so that `drive` measures a warm server. */
export async function warmUp(spec: Omit<LoadSpec, 'seconds'>): Promise<void> {
  const seconds = warmUpSeconds();
  if (seconds > 0) await loadClient()({ ...spec, seconds }, async () => undefined);
}

/** `serverCpuMs`: the server's CPU time so far; this process's by default, another's (a peer) through processCpuMs. */
export async function drive(spec: LoadSpec, serverCpuMs: () => number = () => cpuMs(process.cpuUsage())): Promise<LoadResult> {
  const profile = profiler(process.env.BENCH_CPU_PROFILE);
  let serverStart = serverCpuMs();
  let machineStart = machineBusyMs();
  const { clientCpuMs, ...result } = await loadClient()(spec, async () => {
    await profile.start();
    serverStart = serverCpuMs();
    machineStart = machineBusyMs();
  });
  const server = serverCpuMs() - serverStart;
  const rest = machineBusyMs() - machineStart - server - clientCpuMs;
  await profile.stop();
  const per = (ms: number) => ms / Math.max(1, result.requests);
  return {
    ...result,
    load: os
      .loadavg()
      .map((value) => value.toFixed(2))
      .join(' '),
    cpuPerRequest: { server: per(server), client: per(clientCpuMs), rest: per(rest) },
  };
}

/** Answers with a 2xx status: what the throughput counts (timed-out requests are in neither `requests` nor `statuses`). */
export const answered2xx = ({ statuses }: LoadResult): number =>
  Object.entries(statuses).reduce((sum, [status, count]) => sum + (status.startsWith('2') ? count : 0), 0);

/** The failures cell: the count, and what is behind it (e.g. `5740 (429: 5740)`, `12 (timeouts or errors: 12)`). */
function failuresCell({ failures, statuses }: LoadResult): string {
  const refused = Object.entries(statuses).filter(([status]) => !status.startsWith('2'));
  const unanswered = failures - refused.reduce((sum, [, count]) => sum + count, 0);
  const causes = [
    ...refused.map(([status, count]) => `${status}: ${count}`),
    ...(unanswered > 0 ? [`timeouts or errors: ${unanswered}`] : []),
  ];
  return causes.length === 0 ? String(failures) : `${failures} (${causes.join(', ')})`;
}

/**
 * A markdown table for RESULTS.md, one row per result: throughput (2xx answers only), p50/p99 latency and the
 * machine's load average when the row was measured. Each row is `[setting, result]`; a setting of '' drops the column.
 */
export function resultTable(unit: string, concurrency: number, ...rows: [setting: string, result: LoadResult][]): string {
  const named = rows.some(([setting]) => setting !== '');
  const lead = named ? '| setting ' : '';
  return [
    `${lead}| concurrency | seconds | requests | failures | ${unit} | p50 ms | p99 ms | CPU ms per request: server / client / rest | load avg |`,
    `${named ? '|---' : ''}|---|---|---|---|---|---|---|---|---|`,
    ...rows.map(([setting, result]) => {
      const { elapsedSeconds, requests, p50, p99, cpuPerRequest: cpu, load } = result;
      const cpuCell = cpu ? `${cpu.server.toFixed(2)} / ${cpu.client.toFixed(2)} / ${cpu.rest.toFixed(2)}` : 'n/a';
      return (
        `${named ? `| ${setting} ` : ''}| ${concurrency} | ${elapsedSeconds.toFixed(1)} | ${requests} | ${failuresCell(result)} | ` +
        `${(answered2xx(result) / elapsedSeconds).toFixed(0)} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${cpuCell} | ${load} |`
      );
    }),
  ].join('\n');
}
