/**
 * `npm run bench:<name>` (scripts/bench.mjs): a benchmark runs through tsx on a supported Node, with its arguments
 * and its exit status passed through; on an unsupported Node it runs on the supported one npm install fetched into
 * .node/, saying so, as `npm start` does, so that no figure is taken on a Node the service does not run on.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import { startNodePath } from '../../scripts/supported-node.mjs';
import { isSupportedNode } from '../../src/config.ts';
import { pretendNode } from '../helpers/server-process.ts';

const run = promisify(execFile);
const FIXTURE = 'test/bench/fixtures/report-node.ts';
const env = { ...process.env, ALLOW_UNSUPPORTED_NODE: '' };

async function bench(nodeArgs: string[], args: string[], extraEnv: Record<string, string> = {}) {
  const result = await run(process.execPath, [...nodeArgs, 'scripts/bench.mjs', FIXTURE, ...args], { env: { ...env, ...extraEnv } }).catch(
    (error: { code: number; stdout: string; stderr: string }) => error,
  );
  const { stdout, stderr } = result;
  return { code: 'code' in result ? result.code : 0, report: JSON.parse(stdout.trim()) as { node: string; args: string[] }, stderr };
}

t.test('on a supported Node: the benchmark runs on it, through tsx, with its arguments and exit status', async (t) => {
  // Pretended (this machine's own Node may be an unsupported one): the child is not, and reports the real version.
  const { code, report, stderr } = await bench(pretendNode('24.0.0'), ['10', '16']);
  t.equal(code, 0);
  t.same(report, { node: process.versions.node, args: ['10', '16'] }, 'on this Node, with its arguments');
  t.notMatch(stderr, /not supported/);
  const failing = await bench(pretendNode('24.0.0'), [], { REPORT_EXIT_CODE: '3' });
  t.equal(failing.code, 3, "the benchmark's exit status is the runner's");
});

const supportedNode = [startNodePath(), process.execPath]
  .filter((file) => existsSync(file))
  .find((file) => isSupportedNode(execFileSync(file, ['-p', 'process.versions.node']).toString().trim()));

t.test(
  'on an unsupported Node: the benchmark runs on the supported Node npm install fetched, and says so',
  { skip: supportedNode ? false : 'no supported Node here (.node/ from npm install, or this one) to re-run on' },
  async (t) => {
    const real = execFileSync(supportedNode!, ['-p', 'process.versions.node']).toString().trim();
    const { code, report, stderr } = await bench(pretendNode('20.20.2'), ['5'], { START_NODE: supportedNode! });
    t.equal(code, 0);
    t.same(report, { node: real, args: ['5'] }, `ran on ${real}, not on the pretended 20.20.2`);
    t.match(stderr, `Node.js 20.20.2 is not supported: benchmarking on ${supportedNode}`);
  },
);

t.test('on an unsupported Node with no supported one to hand: it runs anyway, warning that the figures are not ours', async (t) => {
  const { code, report, stderr } = await bench(pretendNode('20.20.2'), [], { START_NODE: '/nonexistent/node' });
  t.equal(code, 0);
  t.equal(report.node, process.versions.node, 'on this Node (the child is not pretended)');
  t.match(stderr, /Node\.js 20\.20\.2 is not supported and \.node\/ has none: these figures are not the service's/);
});
