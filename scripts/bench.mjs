/**
 * `npm run bench:<name>`: runs a benchmark (TypeScript, through tsx) on a supported Node, as `npm start` runs the
 * server: on an unsupported one (Debian's Node 20), on the Node npm install put in .node/ (scripts/supported-node.mjs)
 * when there is one, else on this one with a warning. Figures from another Node are not the service's: Node 20 imports
 * a P-256 public key about four times slower than Node 24, which every CSR check pays.
 *
 *   node scripts/bench.mjs bench/issue/run.ts [arguments]
 */
import { existsSync } from 'node:fs';
import { nodeToStartOn, runOn } from './supported-node.mjs';

const [file, ...args] = process.argv.slice(2);
const supported = await nodeToStartOn();
let node = process.execPath;
if (supported !== null && existsSync(supported)) {
  process.stderr.write(`Node.js ${process.versions.node} is not supported: benchmarking on ${supported}\n`);
  node = supported;
} else if (supported !== null) {
  process.stderr.write(`Node.js ${process.versions.node} is not supported and .node/ has none: these figures are not the service's\n`);
}
runOn(node, ['--import', 'tsx', file, ...args]);
