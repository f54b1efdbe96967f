import { defineConfig } from 'prisma/config';

// The Prisma CLI downloads a native schema engine before `generate` unless this points at a file.
// `generate` never runs it, and migrations go through the WASM engine (src/db/migrate.ts), so any file will do.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= 'package.json';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
