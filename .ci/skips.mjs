// Lists the skipped and todo tests of one tap run (its TAP output) and fails when one is not in the allow-list,
// so a green CI cannot hide tests that did not run. Usage: node .ci/skips.mjs <tap-log> <pass-name>
import { readFileSync } from 'node:fs';

const [logFile, pass] = process.argv.slice(2);
const allowFile = new URL('./allowed-skips', import.meta.url);

// Allow-list lines: `pass | test file | fragment of the skip line | reason`; `*` as pass matches every pass.
const allowed = readFileSync(allowFile, 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => {
    const [linePass, file, fragment, reason] = line.split('|').map((field) => field.trim());
    if (!reason) throw new Error(`.ci/allowed-skips: every entry needs a reason: ${line}`);
    return { pass: linePass, file, fragment };
  });

const found = [];
let file = '';
for (const line of readFileSync(logFile, 'utf8').split('\n')) {
  const top = /^# Subtest: (\S+\.test\.ts)/.exec(line);
  if (top) file = top[1];
  const mark = /^\s*(?:not )?ok \d+ - (.*?)\s*# (SKIP|TODO)\b\s*(.*)$/.exec(line);
  // A whole file skipped shows as the file's own line at the top level.
  if (mark) found.push({ file: /\.test\.ts$/.test(mark[1]) ? mark[1] : file, kind: mark[2], text: `${mark[1]} ${mark[3]}`.trim() });
}

const unlisted = found.filter(
  (skip) =>
    !allowed.some(
      (entry) =>
        (entry.pass === '*' || entry.pass === pass) && entry.file === skip.file && skip.text.includes(entry.fragment),
    ),
);
const count = (kind) => found.filter((skip) => skip.kind === kind).length;
console.log(`${pass}: ${count('SKIP')} skipped, ${count('TODO')} todo, ${unlisted.length} not in .ci/allowed-skips`);
for (const skip of found) {
  const mark = unlisted.includes(skip) ? 'NOT ALLOWED' : 'allowed';
  console.log(`  ${skip.kind} (${mark}) ${skip.file}: ${skip.text}`);
}
process.exit(unlisted.length > 0 ? 1 : 0);
