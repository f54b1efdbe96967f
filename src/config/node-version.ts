/** The Node.js lines the service supports, and the check every entry runs first. */
import { boolean, ConfigError, type Env } from './env.ts';

/**
 * The Node.js lines this service is tested on and deployed to (Lambda: serverless.yml's runtime), each from its
 * lowest release the dependencies accept (osls wants 22.13). package.json's `engines` says the same
 * (test/unit/node-version.test.ts holds them together). Node 20 is past its end of life.
 */
export const SUPPORTED_NODE = [
  { major: 22, minimum: '22.13.0' },
  { major: 24, minimum: '24.0.0' },
  { major: 26, minimum: '26.0.0' },
] as const;

/** `^22.13.0 || ^24.0.0 || ^26.0.0`, as `engines.node` writes it. */
export const SUPPORTED_NODE_RANGE = SUPPORTED_NODE.map((line) => `^${line.minimum}`).join(' || ');

function atLeast(version: string, minimum: string): boolean {
  const [a, b] = [version, minimum].map((v) => v.split('.').map((part) => Number.parseInt(part, 10)));
  for (let index = 0; index < 3; index++) {
    if (a![index] !== b![index]) return a![index]! > b![index]!;
  }
  return true;
}

export function isSupportedNode(version: string): boolean {
  const line = SUPPORTED_NODE.find((candidate) => Number.parseInt(version, 10) === candidate.major);
  return line !== undefined && atLeast(version, line.minimum);
}

/**
 * Run by every entry (the server, each Lambda function) before anything else: an unsupported Node refuses to
 * start with one message, unless ALLOW_UNSUPPORTED_NODE=1 (then a warning says so).
 */
export function checkNodeVersion(env: Env = process.env, version: string = process.versions.node): void {
  if (isSupportedNode(version)) return;
  const message = `Node.js ${version} is not supported: this service runs on Node.js ${SUPPORTED_NODE_RANGE}`;
  if (!boolean(env, 'ALLOW_UNSUPPORTED_NODE', false)) {
    throw new ConfigError(`${message}. Run it on one of those, or set ALLOW_UNSUPPORTED_NODE=1 to start anyway, untested`);
  }
  // Straight to stderr: a start that fails next (a bad setting) exits before an emitted warning would be printed.
  process.stderr.write(`Warning: ${message}; starting anyway (ALLOW_UNSUPPORTED_NODE=1)\n`);
}
