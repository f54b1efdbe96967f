/**
 * A supported Node.js for `npm start` on a machine whose own Node is not one (Debian's and this project's machines
 * run Node 20, past its end of life): the registry's `node` package of the Lambda runtime's line, kept in .node/.
 * Run as a script (npm's postinstall), it installs that Node once when the running one is unsupported; start.mjs
 * then runs the server on it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(import.meta.dirname, '..');
/** serverless.yml's runtime line (nodejs24.x): the version the bundle is tested and deployed on. */
const NODE_LINE = 24;
const installDir = path.join(root, '.node');

/** The Node binary start.mjs re-runs on: START_NODE when set (tests point it elsewhere), else .node's. */
export function startNodePath(env = process.env) {
  return env.START_NODE || path.join(installDir, 'node_modules', 'node', 'bin', 'node');
}

/** The Node to re-run `npm start` on: null when this one is supported or ALLOW_UNSUPPORTED_NODE says start anyway. */
export async function nodeToStartOn(env = process.env, version = process.versions.node) {
  const { isSupportedNode } = await import(pathToFileURL(path.join(root, 'dist', 'src', 'config.js')).href);
  if (isSupportedNode(version) || ['1', 'true', 'yes', 'on'].includes(env.ALLOW_UNSUPPORTED_NODE ?? '')) return null;
  return startNodePath(env);
}

/** Runs `args` on the Node `node` as a child, passing SIGINT and SIGTERM on, and exits with its status. */
export function runOn(node, args) {
  const child = spawn(node, args, { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' ? 130 : 143)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const other = await nodeToStartOn();
  if (other !== null && !existsSync(other)) {
    process.stderr.write(
      `Node.js ${process.versions.node} is not supported; installing Node.js ${NODE_LINE} from the npm registry into .node/ for npm start\n`,
    );
    mkdirSync(installDir, { recursive: true });
    // The `node` package fetches its platform's binary in a preinstall script, which npm runs only when allowed.
    writeFileSync(path.join(installDir, 'package.json'), JSON.stringify({ private: true, allowScripts: { node: true } }));
    try {
      execFileSync('npm', ['install', '--prefix', installDir, '--no-audit', '--no-fund', '--loglevel=error', `node@${NODE_LINE}`], {
        stdio: 'inherit',
      });
    } catch {
      // Not fatal for the install: npm start then refuses with the message naming the supported lines.
      process.stderr.write(`Could not install Node.js ${NODE_LINE} into .node/; npm start needs Node.js 22.13+, 24 or 26\n`);
    }
  }
}
