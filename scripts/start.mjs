/**
 * `npm start`: runs the compiled server from dist/ (plain Node starts well under the 2 s a restart may take),
 * rebuilding dist/ (server and console) first when any source file is newer than the last build. On an unsupported
 * Node it re-runs itself on the supported one npm install put in .node/ (scripts/supported-node.mjs), if any.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { nodeToStartOn, runOn } from './supported-node.mjs';

const root = path.resolve(import.meta.dirname, '..');
const stamp = path.join(root, 'dist', '.build-stamp');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(full) : statSync(full).mtimeMs);
  }
  return newest;
}

const sources = [path.join(root, 'src'), path.join(root, 'console'), path.join(root, 'package.json'), path.join(root, 'tsconfig.json')];
const newestSource = Math.max(
  ...sources.map((source) => (statSync(source).isDirectory() ? newestMtime(source) : statSync(source).mtimeMs)),
);
if (!existsSync(stamp) || newestSource > statSync(stamp).mtimeMs) {
  process.stderr.write('Building dist/ (sources changed since the last build)...\n');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
  execFileSync(process.execPath, [path.join(root, 'console', 'build.mjs')], { stdio: 'inherit', cwd: root });
  writeFileSync(stamp, new Date().toISOString());
}
const supportedNode = await nodeToStartOn();
if (supportedNode !== null && existsSync(supportedNode)) {
  process.stderr.write(`Node.js ${process.versions.node} is not supported: starting on ${supportedNode}\n`);
  runOn(supportedNode, [import.meta.filename, ...process.argv.slice(2)]);
} else {
  await import(pathToFileURL(path.join(root, 'dist', 'src', 'server.js')).href);
}
