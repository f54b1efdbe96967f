/** The migration function, invoked at deploy time: it needs the database URL and nothing else. */
import { loadMigrationConfig } from '../config.ts';
import { applyMigrations } from '../db/migrate.ts';

const { databaseUrl } = loadMigrationConfig();

export async function handler(): Promise<{ applied: string[] }> {
  return { applied: await applyMigrations({ url: databaseUrl }) };
}
