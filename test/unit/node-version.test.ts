// The Node.js lines the service runs on: which versions the entries accept, and that package.json, serverless.yml
// and the README name the same lines.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { checkNodeVersion, SUPPORTED_NODE, SUPPORTED_NODE_RANGE } from '../../src/config.ts';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

t.test('the supported lines are accepted from their lowest release; anything else is refused with the range', async (t) => {
  for (const version of ['22.13.0', '22.23.3', '24.0.0', '24.21.0', '26.0.0', '26.10.0']) {
    t.doesNotThrow(() => checkNodeVersion({}, version), version);
  }
  for (const version of ['18.20.8', '20.20.2', '21.7.3', '22.12.9', '22.9.0', '23.11.0', '25.2.1', '27.0.0', '220.13.0']) {
    t.throws(
      () => checkNodeVersion({}, version),
      {
        name: 'ConfigError',
        message: `Node.js ${version} is not supported: this service runs on Node.js ^22.13.0 || ^24.0.0 || ^26.0.0. Run it on one of those, or set ALLOW_UNSUPPORTED_NODE=1 to start anyway, untested`,
      },
      version,
    );
  }
});

t.test('ALLOW_UNSUPPORTED_NODE=1 lets an unsupported Node start, with a warning; other values are refused', async (t) => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
  try {
    checkNodeVersion({ ALLOW_UNSUPPORTED_NODE: '1' }, '20.20.2');
    checkNodeVersion({ ALLOW_UNSUPPORTED_NODE: '1' }, '24.1.0');
  } finally {
    process.stderr.write = write;
  }
  t.same(written, [
    'Warning: Node.js 20.20.2 is not supported: this service runs on Node.js ^22.13.0 || ^24.0.0 || ^26.0.0; starting anyway (ALLOW_UNSUPPORTED_NODE=1)\n',
  ]);
  t.throws(() => checkNodeVersion({ ALLOW_UNSUPPORTED_NODE: '0' }, '20.20.2'), /not supported/);
  t.throws(() => checkNodeVersion({ ALLOW_UNSUPPORTED_NODE: 'maybe' }, '20.20.2'), /ALLOW_UNSUPPORTED_NODE must be true or false/);
});

t.test('package.json engines, serverless.yml and the README name the same lines', async (t) => {
  t.equal(JSON.parse(read('package.json')).engines.node, SUPPORTED_NODE_RANGE);
  const runtime = (parse(read('serverless.yml')) as { provider: { runtime: string } }).provider.runtime;
  t.match(runtime, /^nodejs(\d+)\.x$/);
  t.ok(
    SUPPORTED_NODE.some((line) => runtime === `nodejs${line.major}.x`),
    `Lambda's ${runtime} is a supported line`,
  );
  t.match(read('README.md'), 'Node.js 22 (22.13 or later), 24 or 26', 'the README says which');
});
