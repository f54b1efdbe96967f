// Mutation testing (npm run mutate): see docs/mutation.md for the scope, the reasons behind it and the scores.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.stryker.json',
  plugins: ['@stryker-mutator/tap-runner', '@stryker-mutator/typescript-checker'],
  tap: {
    // Only the fast unit tests: no server, no database, no openssl.
    testFiles: ['test/unit/**/*.test.ts'],
    nodeArgs: ['--import=tsx'],
  },
  // The tap runner reports one test per file: perTest runs only the files that reach a mutant.
  coverageAnalysis: 'perTest',
  // What `npm run mutate` covers within 60 minutes on the shared 2-core machine (docs/mutation.md, "Scope"). The other
  // modules with fast unit tests run one at a time: `nice -n 10 npx stryker run --mutate src/x509/ocsp.ts`.
  // tsconfig.stryker.json's include must name every module mutated either way (the checker watches only those files).
  mutate: [
    'src/services/billing/settlement-rules.ts',
    'src/services/revocation/revocation-rules.ts',
    'src/keystore/sealing.ts',
    'src/x509/crl.ts',
    'src/auth/token-principals.ts',
  ],
  ignorePatterns: ['dist', 'test-output', 'console', 'bench', 'openapi', 'data', 'reports', '.tap', 'tmp'],
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  concurrency: 4,
  timeoutMS: 10000,
  cleanTempDir: 'always',
};
