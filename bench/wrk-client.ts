/**
 * `wrk` (Debian's, installed with apt-get when missing) as the load client: the load generator issue #12's figures
 * were measured with, a C client spending a fraction of autocannon's CPU per request, so more of the machine is left
 * to the server under test. `BENCH_CLIENT=wrk` makes load.ts use it.
 *
 * The spec becomes a Lua script: each connection sends the bodies in turn, each thread counts its answers by status,
 * and `done` sums the threads' counts into one `WRK_REPORT {json}` line. wrk's CPU time comes from bash's `times`
 * once wrk has exited.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { commandAvailable } from './commands.ts';
import type { ClientReport, LoadSpec } from './load.ts';

/** A Lua string literal holding `bytes` exactly: printable ASCII as it is, every other byte as a decimal escape. */
export function luaString(bytes: Uint8Array): string {
  let text = '"';
  for (const byte of bytes) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c;
    text += printable ? String.fromCharCode(byte) : `\\${String(byte).padStart(3, '0')}`;
  }
  return `${text}"`;
}

const text = (value: string) => luaString(Buffer.from(value));

/** The Lua script for `spec`: its requests, the answers counted by status, and the report. */
export function wrkScript(spec: LoadSpec): string {
  const { pathname, search } = new URL(spec.url);
  const headers = Object.entries(spec.headers).map(([name, value]) => `[${text(name)}] = ${text(value)}`);
  const bodies = spec.bodies.map((body) => (spec.method === 'GET' ? 'false' : luaString(body)));
  return `local method, target = ${text(spec.method)}, ${text(pathname + search)}
local headers = { ${headers.join(', ')} }
local bodies = { ${bodies.join(',\n')} }
local unique = ${spec.uniqueIds ? 'true' : 'false'}
local run = "${randomBytes(6).toString('hex')}"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- wrk.format adds Host and Content-Length to the table it is given: each request gets its own copy.
local function request_with(body, id)
  local own = {}
  for name, value in pairs(headers) do own[name] = id and (value:gsub("%[<id>%]", id)) or value end
  if body and id then body = body:gsub("%[<id>%]", id) end
  return wrk.format(method, target, own, body or nil)
end

local prepared, sent = {}, 0
counts = {}

function init()
  for i, body in ipairs(bodies) do prepared[i] = request_with(body, nil) end
end

-- "[<id>]" (uniqueIds) becomes an id unique to the request: this script's random run id (so that a warm-up and
-- the measured load after it never share an id, which a server would answer as a replay), its thread, its count.
function request()
  sent = sent + 1
  local i = (sent - 1) % #bodies + 1
  if unique then return request_with(bodies[i], run .. "-" .. thread_id .. "-" .. sent) end
  return prepared[i]
end

function response(status)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency)
  local totals, statuses = {}, {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do totals[status] = (totals[status] or 0) + count end
  end
  for status, count in pairs(totals) do table.insert(statuses, string.format('"%d": %d', status, count)) end
  local errors = summary.errors
  io.write(string.format(
    'WRK_REPORT {"requests": %d, "microseconds": %d, "p50": %.3f, "p99": %.3f, "unanswered": %d, "statuses": {%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    errors.connect + errors.read + errors.write + errors.timeout, table.concat(statuses, ", ")))
end
`;
}

interface WrkReport {
  requests: number;
  microseconds: number;
  p50: number;
  p99: number;
  /** Connection errors and timeouts. */
  unanswered: number;
  /** Answers per HTTP status, over all threads. */
  statuses: Record<string, number>;
}

/** Seconds in bash's `times` notation (`1m2.345s`). */
function timesSeconds(value: string): number {
  const match = /^(\d+)m([\d.]+)s$/.exec(value);
  if (match === null) throw new Error(`unreadable \`times\` output: ${value}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** The report in wrk's output, with its CPU time from the `times` lines after it (the second: the children's). */
export function readWrkOutput(output: string): ClientReport {
  const lines = output.trimEnd().split('\n');
  const reportLine = lines.find((line) => line.startsWith('WRK_REPORT '));
  if (reportLine === undefined) throw new Error(`wrk printed no report:\n${output}`);
  const report = JSON.parse(reportLine.slice('WRK_REPORT '.length)) as WrkReport;
  const [user, system] = (lines.at(-1) ?? '').trim().split(/\s+/).map(timesSeconds);
  const { statuses } = report;
  const refused = Object.entries(statuses).reduce((sum, [status, count]) => sum + (status.startsWith('2') ? 0 : count), 0);
  return {
    elapsedSeconds: report.microseconds / 1e6,
    requests: report.requests,
    failures: refused + report.unanswered,
    p50: report.p50,
    p99: report.p99,
    statuses,
    clientCpuMs: (user! + system!) * 1000,
  };
}

/** Runs wrk with `spec` (two threads as wrk's default, one for a lone connection), `started` once it is under way. */
export async function runWrk(spec: LoadSpec, started: () => Promise<void>): Promise<ClientReport> {
  if (!commandAvailable('wrk', ['--version'], 'wrk')) throw new Error('BENCH_CLIENT=wrk, but wrk is missing and could not be installed');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pca-wrk-'));
  const script = path.join(dir, 'load.lua');
  writeFileSync(script, wrkScript(spec));
  const args = ['-t', String(Math.min(2, spec.concurrency)), '-c', String(spec.concurrency), '-d', `${spec.seconds}s`, '--timeout', '10s'];
  const child = spawn('bash', ['-c', 'wrk "$@"; status=$?; times; exit $status', 'bash', ...args, '-s', script, spec.url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += String(chunk)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  try {
    await started();
    const status = await exited;
    if (status !== 0) throw new Error(`wrk exited with ${status}:\n${output}`);
    return readWrkOutput(output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
