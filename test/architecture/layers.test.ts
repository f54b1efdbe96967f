/**
 * Imports point down. Each top-level part of src/ has a layer; a file may import its own part and any part of a
 * lower layer, never a higher one (type-only imports included: a type from above still couples the layers). A
 * newcomer changing a route then knows services cannot depend on it, and a service knows db and x509 cannot.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Lowest first. Parts of one layer may import each other. */
const LAYERS: string[][] = [
  ['clock', 'concurrency', 'lru-map', 'x509', 'schemas'],
  ['errors'],
  ['config'],
  ['db'],
  ['keystore'],
  ['metrics', 'auth', 'export', 'jobs'],
  ['services'],
  ['http'],
  ['app', 'runtime', 'secrets'],
  ['lambda', 'server', 'server-workers'],
];
const layerOf = new Map(LAYERS.flatMap((parts, rank) => parts.map((part) => [part, rank] as const)));

/** `src/services/ca/ca-service.ts` → `services`; `src/config.ts` → `config`. */
const partOf = (file: string) => path.relative(SRC, file).split(path.sep)[0].replace(/\.ts$/, '');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The relative specifiers a file imports or re-exports, static or dynamic. */
function importsOf(source: string): string[] {
  const found = [...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)];
  return found.map((match) => match[1]);
}

t.same(
  importsOf(
    `import a from './a.ts';\nexport { b } from "../b.ts";\nconst c = await import('./c.ts');\nimport './d.ts';\nimport x from 'pkg';`,
  ),
  ['./a.ts', '../b.ts', './c.ts', './d.ts'],
);

const files = sourceFiles(SRC);
t.ok(files.length > 100, `${files.length} source files`);

t.test('every part of src/ has a layer', async (t) => {
  const parts = new Set(files.map(partOf));
  t.same(
    [...parts].filter((part) => !layerOf.has(part)),
    [],
  );
});

t.test('no import runs up the layers', async (t) => {
  const upward: string[] = [];
  for (const file of files) {
    const from = partOf(file);
    for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), specifier);
      if (!target.startsWith(SRC)) continue;
      const to = partOf(target);
      if (to !== from && (layerOf.get(to) ?? -1) > (layerOf.get(from) ?? -1)) upward.push(`${path.relative(SRC, file)} → ${specifier}`);
    }
  }
  t.same(upward, []);
});
