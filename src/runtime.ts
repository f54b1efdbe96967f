/**
 * What a running deployment holds besides the app: the database (Postgres or embedded PGlite) and the key
 * stores. Shared by the server entry, the Lambda handler and the command-line scripts.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config, RuntimeConfig } from './config.ts';
import { lockDataDir } from './db/data-dir-lock.ts';
import { openDatabase, type DatabaseHandle } from './db/database.ts';
import { applyMigrations, pendingMigrations } from './db/migrate.ts';
import { createKeyStores } from './keystore/index.ts';
import type { KeyStores } from './services/index.ts';

export interface Runtime {
  database: DatabaseHandle;
  keyStores: KeyStores;
  close(): Promise<void>;
}

export function embeddedDataDir(config: Pick<Config, 'dataDir'>): string {
  return path.join(config.dataDir, 'pglite');
}

/** The embedded database: PGlite in the data folder (first open initialises it, which takes seconds). */
async function openEmbedded(config: RuntimeConfig, migrate: boolean): Promise<DatabaseHandle> {
  const dataDir = embeddedDataDir(config);
  await mkdir(dataDir, { recursive: true });
  const unlock = await lockDataDir(dataDir);
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create(dataDir);
    if (migrate) await applyMigrations({ pglite });
    const database = await openDatabase({ pglite });
    return {
      ...database,
      close: async () => {
        await database.close();
        await pglite.close();
        await unlock();
      },
    };
  } catch (error) {
    await unlock();
    throw error;
  }
}

async function openPostgres(config: RuntimeConfig, migrate: boolean): Promise<DatabaseHandle> {
  if (migrate) await applyMigrations({ url: config.databaseUrl! });
  return openDatabase({ url: config.databaseUrl, poolSize: config.databasePoolSize, queryWaitMs: config.databaseQueryWaitMs });
}

/**
 * Without migrating, the schema must already be the code's: a start on a database that lacks a migration answered
 * 500 to most requests while /ready said 200. Refused with the missing names instead.
 */
async function refusePendingMigrations(database: DatabaseHandle): Promise<void> {
  const pending = await pendingMigrations(async (sql) => ({ rows: await database.prisma.$queryRawUnsafe<Record<string, unknown>[]>(sql) }));
  if (pending.length > 0) {
    throw new Error(
      `the database lacks ${pending.length} migration(s) of this version (${pending.join(', ')}): apply them first ` +
        '(npm run db:migrate, or the migrate function on Lambda), or start with AUTO_MIGRATE=true',
    );
  }
}

export async function openRuntime(config: RuntimeConfig, options: { migrate?: boolean } = {}): Promise<Runtime> {
  const migrate = options.migrate ?? config.autoMigrate;
  const database = config.databaseUrl ? await openPostgres(config, migrate) : await openEmbedded(config, migrate);
  try {
    if (!migrate) await refusePendingMigrations(database);
    const keyStores = await createKeyStores({
      masterKey: config.masterKey,
      otherMasterKeys: config.otherMasterKeys,
      pkcs11: config.keyStore.pkcs11,
    });
    return {
      database,
      keyStores,
      async close() {
        await Promise.allSettled([keyStores.software.close(), keyStores.pkcs11?.close()]);
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
