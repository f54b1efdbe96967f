/** The migration function, invoked at deploy time: it needs the database URL and nothing else. */
import { loadMigrationConfig } from '../config.ts';
import { applyMigrations } from '../db/migrate.ts';
import { resolveSecretReferences } from '../secrets.ts';

const { databaseUrl } = loadMigrationConfig(await resolveSecretReferences(process.env));

export async function handler(): Promise<{ applied: string[] }> {
  return { applied: await applyMigrations({ url: databaseUrl }) };
}
