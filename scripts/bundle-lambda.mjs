/**
 * `npm run package` step 1: the Lambda functions as one esbuild bundle in dist/lambda/ — an ES module per entry
 * (http, jobs, migrate) with shared chunks, Prisma's Postgres query compiler as a .wasm file beside them — plus the
 * few packages that cannot be bundled, copied with their dependencies into dist/lambda/node_modules:
 * - pkcs11js, a native module (loaded only when the PKCS#11 store is configured);
 * - @prisma/schema-engine-wasm, whose .wasm the migration runner reads from the package folder.
 * @fastify/swagger-ui is bundled (its dependencies are the bundle's own), but serves Swagger UI's files and reads its
 * logo from its package folder: that folder's static/ is copied to the same place beside the bundle. Loading the
 * package from node_modules instead cost ~60 ms of main-thread CPU of every cold start (resolving and compiling it
 * and a second copy of @fastify/static, yaml and their dependencies).
 * The route schemas' validators and serializers are generated as code first (scripts/lambda-schemas.ts): a file per
 * schema in precompiled-schemas/, and their index bundled in place of src/lambda/precompiled-schemas.ts, so a cold
 * start compiles no schema.
 * The folder runs as it is: prisma/migrations, the committed OpenAPI document (served as it is, src/lambda/http.ts)
 * and a package.json (the version the API reports) go beside it.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/lambda');
const COPIED = ['pkcs11js', '@prisma/schema-engine-wasm'];
const requireHere = createRequire(path.join(root, 'noop.js'));
const SWAGGER_UI = path.dirname(requireHere.resolve('@fastify/swagger-ui/package.json'));
const SWAGGER_UI_SHIPPED = 'node_modules/@fastify/swagger-ui';
// Never reached on Lambda (PGlite is the embedded database; the Postgres deployment opens it nowhere).
const ABSENT = ['@electric-sql/pglite', 'pglite-prisma-adapter'];

rmSync(out, { recursive: true, force: true });
const generated = path.join(mkdtempSync(path.join(os.tmpdir(), 'pca-schemas-')), 'precompiled-schemas.mjs');
execFileSync(
  process.execPath,
  ['--import', import.meta.resolve('tsx'), path.join(root, 'scripts/lambda-schemas.ts'), generated, path.join(out, 'precompiled-schemas')],
  { cwd: root, stdio: 'inherit' },
);
const PRECOMPILED = path.join(root, 'src/lambda/precompiled-schemas.ts');
await build({
  absWorkingDir: root,
  entryPoints: { http: 'src/lambda/http.ts', jobs: 'src/lambda/jobs.ts', migrate: 'src/lambda/migrate.ts' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // The lowest supported line (src/config.ts SUPPORTED_NODE); Lambda runs serverless.yml's nodejs24.x.
  target: 'node22',
  outExtension: { '.js': '.mjs' },
  external: [...COPIED, ...ABSENT],
  // Bundled CommonJS packages call require() for Node's own modules; __pcaBundleDir is the folder of every chunk.
  banner: {
    js: "import { createRequire as __pcaRequire } from 'node:module'; const require = __pcaRequire(import.meta.url); const __pcaBundleDir = import.meta.dirname;",
  },
  legalComments: 'none',
  // Fewer bytes for V8 to scan at every cold start (main-thread CPU to the first certificate 452 → 429 ms,
  // bench/coldstart/RESULTS.md); identifiers are kept, so stack traces in the logs still name the functions.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  plugins: [
    {
      name: 'precompiled-schemas',
      setup(build) {
        build.onLoad({ filter: /[\\/]src[\\/]lambda[\\/]precompiled-schemas\.ts$/ }, (args) =>
          args.path === PRECOMPILED
            ? { contents: readFileSync(generated, 'utf8'), loader: 'js', resolveDir: path.dirname(PRECOMPILED) }
            : undefined,
        );
      },
    },
    {
      // fastify requires its default compilers (@fastify/ajv-compiler, @fastify/fast-json-stringify-compiler: Ajv
      // and fast-json-stringify's code generator, 500 KB) only when the app gives none; src/http/plugins/validation.ts
      // always gives both, and loads them itself only for a schema the bundle has no code for.
      name: 'no-default-schema-compilers',
      setup(build) {
        build.onResolve({ filter: /^@fastify\/(ajv-compiler|fast-json-stringify-compiler)$/ }, (args) =>
          /[\\/]fastify[\\/]lib[\\/]schema-controller\.js$/.test(args.importer) ? { path: args.path, namespace: 'not-bundled' } : undefined,
        );
        build.onLoad({ filter: /.*/, namespace: 'not-bundled' }, (args) => ({
          contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled`)});`,
          loader: 'js',
        }));
      },
    },
    {
      // Prisma's client imports its WASM query compiler as a 2.3 MB module of one base64 string, which V8 parses at
      // the first query (~40 ms of a cold start); the bytes are written beside the bundle and read from there.
      name: 'prisma-wasm-file',
      setup(build) {
        build.onResolve({ filter: /^@prisma\/client\/runtime\/query_compiler_.*\.wasm-base64\.mjs$/ }, (args) => ({
          path: args.path,
          namespace: 'prisma-wasm',
        }));
        build.onLoad({ filter: /.*/, namespace: 'prisma-wasm' }, async (args) => {
          const file = path.basename(args.path).replace(/\.wasm-base64\.mjs$/, '.wasm');
          const { wasm } = await import(requireHere.resolve(args.path));
          mkdirSync(out, { recursive: true });
          writeFileSync(path.join(out, file), Buffer.from(wasm, 'base64'));
          // The client hands `wasm` to Buffer.from(wasm, 'base64'), which copies a Buffer as it is.
          const contents = `import { readFileSync } from 'node:fs';\nimport { join } from 'node:path';\nexport const wasm = readFileSync(join(__pcaBundleDir, ${JSON.stringify(file)}));\n`;
          return { contents, loader: 'js' };
        });
      },
    },
    {
      // Swagger UI's modules find their files through __dirname: point it at the copy beside the bundle.
      name: 'swagger-ui-dirname',
      setup(build) {
        build.onLoad({ filter: /[\\/]@fastify[\\/]swagger-ui[\\/].*\.js$/ }, (args) => {
          const source = readFileSync(args.path, 'utf8');
          if (!source.includes('__dirname')) return undefined;
          const relative = path.join(SWAGGER_UI_SHIPPED, path.relative(SWAGGER_UI, path.dirname(args.path)));
          const dirname = `const __dirname = require('node:path').join(__pcaBundleDir, ${JSON.stringify(relative)});`;
          return { contents: `${dirname}\n${source}`, loader: 'js' };
        });
      },
    },
  ],
});

/** Copies a package and, recursively, the dependencies it resolves, into out/node_modules (hoisted). */
function copyPackage(name, fromDir, copied = new Map()) {
  const require = createRequire(path.join(fromDir, 'noop.js'));
  let manifestPath;
  try {
    manifestPath = require.resolve(`${name}/package.json`);
  } catch {
    // An optional dependency not installed here, or a package that hides its package.json behind "exports".
    const entry = (() => {
      try {
        return require.resolve(name);
      } catch {
        return undefined;
      }
    })();
    if (!entry) return;
    for (let dir = path.dirname(entry); dir !== path.dirname(dir); dir = path.dirname(dir)) {
      if (existsSync(path.join(dir, 'package.json')) && JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name === name) {
        manifestPath = path.join(dir, 'package.json');
        break;
      }
    }
    if (!manifestPath) return;
  }
  const dir = path.dirname(manifestPath);
  if (copied.has(dir)) return;
  const target = path.join(out, 'node_modules', name);
  if (existsSync(target)) throw new Error(`two versions of ${name} would be copied; extend scripts/bundle-lambda.mjs`);
  copied.set(dir, target);
  mkdirSync(path.dirname(target), { recursive: true });
  // Build leftovers and sources are not needed at run time; the native module's Release build is.
  cpSync(dir, target, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(dir, source);
      if (relative.startsWith('node_modules')) return false;
      if (/\.(map|md|ts|c|cc|cpp|h|hpp|gyp)$/.test(source) && statSync(source).isFile() && !source.endsWith('.d.ts')) return false;
      return !/^build\/(?!Release(\/|$))/.test(relative) && !/^build\/Release\/(obj|\.deps)/.test(relative);
    },
  });
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
    copyPackage(dependency, dir, copied);
  }
}
const copied = new Map();
for (const name of COPIED) copyPackage(name, root, copied);

rmSync(path.dirname(generated), { recursive: true, force: true });
cpSync(path.join(SWAGGER_UI, 'static'), path.join(out, SWAGGER_UI_SHIPPED, 'static'), { recursive: true });
cpSync(path.join(root, 'prisma/migrations'), path.join(out, 'prisma/migrations'), { recursive: true });
cpSync(path.join(root, 'openapi/openapi.yaml'), path.join(out, 'openapi/openapi.yaml'));
const { name, version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
writeFileSync(path.join(out, 'package.json'), `${JSON.stringify({ name, version, private: true, type: 'module' }, null, 2)}\n`);
