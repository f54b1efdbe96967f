/**
 * Builds the console into dist/console: one ES module bundle (Preact), the stylesheet and index.html. Run by
 * `npm run build` (and so by `npm install`); nothing is fetched at run time.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const here = import.meta.dirname;
const out = path.join(here, '..', 'dist', 'console');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(here, 'src', 'main.tsx')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  minify: true,
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));
copyFileSync(path.join(here, 'style.css'), path.join(out, 'app.css'));
