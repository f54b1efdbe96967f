/** The migration function, invoked at deploy time: it needs the database URL and nothing else. */
import { checkNodeVersion, loadMigrationConfig } from '../config.ts';
import { applyMigrations } from '../db/migrate.ts';
import { resolveSecretReferences } from '../secrets.ts';

checkNodeVersion();
const { databaseUrl } = loadMigrationConfig(await resolveSecretReferences(process.env));

export async function handler(): Promise<{ applied: string[] }> {
  return { applied: await applyMigrations({ url: databaseUrl }) };
}
