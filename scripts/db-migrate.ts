/**
 * `npm run db:migrate`: applies prisma/migrations to DATABASE_URL when set, else to the embedded PGlite
 * data folder (DATA_DIR, default ./data/pglite).
 */
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { applyMigrations } from '../src/db/migrate.ts';

async function migrateEmbedded(dataDir: string): Promise<string[]> {
  await mkdir(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  try {
    return await applyMigrations({ pglite });
  } finally {
    await pglite.close();
  }
}

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  const dataDir = process.env.DATA_DIR ?? './data/pglite';
  const applied = url ? await applyMigrations({ url }) : await migrateEmbedded(dataDir);
  const target = url ? 'DATABASE_URL' : `PGlite at ${dataDir}`;
  if (applied.length === 0) console.log(`${target}: up to date, nothing applied`);
  for (const name of applied) console.log(`${target}: applied ${name}`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
