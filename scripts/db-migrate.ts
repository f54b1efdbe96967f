/**
 * `npm run db:migrate`: applies prisma/migrations to DATABASE_URL when set, else to the embedded PGlite
 * database of DATA_DIR (default ./data), the one `npm start` opens (DATA_DIR/pglite). DATABASE_URL and
 * DATABASE_PASSWORD are read as the server reads them, secret references (DATABASE_URL_SECRET_ARN, …) included.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { ConfigError, databaseUrl } from '../src/config.ts';
import { lockDataDir } from '../src/db/data-dir-lock.ts';
import { applyMigrations } from '../src/db/migrate.ts';
import { embeddedDataDir } from '../src/runtime.ts';
import { resolveSecretReferences } from '../src/secrets.ts';

async function migrateEmbedded(dataDir: string): Promise<string[]> {
  await mkdir(dataDir, { recursive: true });
  const unlock = await lockDataDir(dataDir);
  try {
    const pglite = await PGlite.create(dataDir);
    try {
      return await applyMigrations({ pglite });
    } finally {
      await pglite.close();
    }
  } finally {
    await unlock();
  }
}

async function main(): Promise<void> {
  const env = await resolveSecretReferences(process.env);
  const url = databaseUrl(env);
  const dataDir = embeddedDataDir({ dataDir: path.resolve(env.DATA_DIR || 'data') });
  const applied = url ? await applyMigrations({ url }) : await migrateEmbedded(dataDir);
  const target = url ? 'DATABASE_URL' : `PGlite at ${dataDir}`;
  if (applied.length === 0) console.log(`${target}: up to date, nothing applied`);
  for (const name of applied) console.log(`${target}: applied ${name}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    if (error instanceof ConfigError) process.stderr.write(`Configuration error: ${error.message}\n`);
    else console.error(error);
    process.exit(error instanceof ConfigError ? 2 : 1);
  },
);
