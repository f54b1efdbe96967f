/**
 * A real server process for the tests that need one (the quick start, the console in Chromium, SIGKILL): spawned
 * from the repository root, up once it answers `/health`, failed at once if it exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkNodeVersion } from '../../src/config.ts';
import type { TestApp } from './app.ts';
import { freePort } from './database.ts';

const REPO_ROOT = new URL('../..', import.meta.url).pathname;

/**
 * What the entries the tests start (server, Lambda functions) need in their environment to run on this process's
 * Node: nothing on a supported Node; ALLOW_UNSUPPORTED_NODE=1 on one the entries refuse, such as the machines'
 * Node 20, where the suite still runs (test/http/server.test.ts and lambda-init.test.ts check the refusal itself).
 */
export const TEST_NODE_ENV = ((): Record<string, string> => {
  try {
    checkNodeVersion({});
    return {};
  } catch {
    return { ALLOW_UNSUPPORTED_NODE: '1' };
  }
})();

/** Node arguments that make a started process see itself as running on Node `version` (process.versions.node). */
export function pretendNode(version: string): string[] {
  return ['--import', `data:text/javascript,Object.defineProperty(process.versions,'node',{value:${JSON.stringify(version)}})`];
}

/** The environment of a server process sharing `harness`'s database, master key, JWT keys and default domain. */
export function sharedServerEnv(harness: Pick<TestApp, 'config' | 'database'>, port: number): Record<string, string> {
  return {
    DATABASE_URL: harness.database.url!,
    MASTER_KEY: Buffer.from(harness.config.masterKey).toString('base64'),
    JWT_PRIVATE_KEY: harness.config.jwt.privateKeyPem,
    JWT_PUBLIC_KEY: harness.config.jwt.publicKeyPem,
    DEFAULT_DOMAIN_ID: harness.config.defaultDomainId,
    REGION: harness.config.region,
    HOST: '127.0.0.1',
    PORT: String(port),
    RUN_JOBS: 'false',
  };
}

/** src/server.ts (through tsx) on a free port, sharing `harness`'s database and keys, logging errors only. */
export async function startSharedServer(
  harness: Pick<TestApp, 'config' | 'database'>,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  return startServerProcess(['--import', 'tsx', 'src/server.ts'], {
    ...process.env,
    ...sharedServerEnv(harness, await freePort()),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'error',
    ...env,
  });
}

export interface ServerProcess {
  base: string;
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output: () => string;
  millisToHealthy: number;
  /** SIGTERM, then the exit code once it has exited. */
  stop: () => Promise<number | null>;
}

/** `env.PORT` names the port; the wait is long because a start takes seconds alone and far longer on a loaded machine. */
export async function startServerProcess(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 180_000): Promise<ServerProcess> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env: { ...TEST_NODE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${env.PORT}`;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited before it answered /health: ${output}`);
    if (
      await fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      )
    ) {
      return {
        base,
        child,
        output: () => output,
        millisToHealthy: performance.now() - started,
        stop: () => {
          child.kill('SIGTERM');
          return exited;
        },
      };
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server did not answer /health within ${timeoutMs} ms: ${output}`);
}

/** The processes whose parent is `pid`, from /proc (no outside tool): a cluster primary's workers, for instance. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name in parentheses (which may hold spaces): state, then the parent's pid.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone since the listing
    }
  }
  return children;
}
