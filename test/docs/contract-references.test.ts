/**
 * Comments cite the wire contract by section (`§4.4.6`); each such citation must name a section of the contract kept
 * in this repository, docs/api-reference.md, so a reader can follow it. A section number after a standard's name on
 * the same line (`RFC 5280 §4.2.1.10`, `X.690 §8.3`) cites that standard instead and is not checked here.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import t from 'tap';

const REPO = new URL('../../', import.meta.url);
const STANDARD = /(RFC ?\d+|X\.\d{3}|FIPS ?[\d-]+|PKCS ?#\d+|SP ?800-\d+|draft-[\w-]+|SEC ?\d)/;

const sections = new Set(
  readFileSync(new URL('docs/api-reference.md', REPO), 'utf8')
    .split('\n')
    .map((line) => /^#+\s+(\d+(?:\.\d+)*)\.?\s/.exec(line)?.[1])
    .filter((section): section is string => section !== undefined),
);

const files = execFileSync('git', ['ls-files', 'src', 'scripts', 'console/src', 'prisma', 'serverless.yml'], {
  cwd: REPO,
  encoding: 'utf8',
})
  .split('\n')
  .filter((file) => /\.(ts|tsx|mjs|sql|prisma|yml)$/.test(file) && !file.includes('/generated/'));

/** Every contract citation in `text`: `[line number, section]`. */
function citations(text: string): [number, string][] {
  const found: [number, string][] = [];
  text.split('\n').forEach((line, index) => {
    for (const match of line.matchAll(/§\s?(\d+(?:\.\d+)*)/g)) {
      if (STANDARD.test(line.slice(0, match.index))) continue;
      found.push([index + 1, match[1]]);
    }
  });
  return found;
}

t.ok(sections.has('4.4.6') && sections.has('10.8'), 'the contract document has numbered sections');

t.test("the citation reader sees contract citations and skips a standard's", async (t) => {
  t.same(citations('/** Revoke (§4.4.6), then §10.8 */'), [
    [1, '4.4.6'],
    [1, '10.8'],
  ]);
  t.same(citations('// RFC 8555 §7.3.4 and §7.3.5'), []);
  t.same(citations('// DER (X.690 §10.2)\n// §99.1'), [[2, '99.1']]);
});

t.test('every contract section a source file cites exists in docs/api-reference.md', async (t) => {
  const dangling: string[] = [];
  let count = 0;
  for (const file of files) {
    for (const [line, section] of citations(readFileSync(new URL(file, REPO), 'utf8'))) {
      count++;
      if (!sections.has(section)) dangling.push(`${file}:${line} §${section}`);
    }
  }
  t.ok(count > 100, `${count} citations read`);
  t.same(dangling, [], 'no citation of a section the contract does not have');
});
