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
  // Keep in step with tsconfig.stryker.json's include (the checker watches only those files and their imports).
  mutate: [
    'src/services/billing/settlement-rules.ts',
    'src/services/revocation/revocation-rules.ts',
    'src/services/certificates/certificate-rules.ts',
    'src/services/ca/ca-rules.ts',
    'src/services/access-keys/access-key-rules.ts',
    'src/keystore/sealing.ts',
    'src/x509/der-writer.ts',
    'src/x509/crl.ts',
    'src/x509/ocsp.ts',
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
