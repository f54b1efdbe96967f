/** What /ready reports: each dependency the service needs to do its work. */
import type { DatabaseHandle } from '../db/database.ts';
import type { KeyStore } from '../keystore/key-store.ts';

export interface ReadinessDependencies {
  database: Pick<DatabaseHandle, 'ping'>;
  keyStores: readonly KeyStore[];
}

export function createReadinessService({ database, keyStores }: ReadinessDependencies) {
  async function probe(check: () => Promise<void>): Promise<string> {
    try {
      await check();
      return 'ok';
    } catch (error) {
      return (error as Error).message || 'failed';
    }
  }
  return {
    async check(): Promise<Record<string, string>> {
      const entries = await Promise.all([
        probe(() => database.ping()).then((result) => ['database', result] as const),
        ...keyStores.map((store) => probe(() => store.check()).then((result) => [`key_store_${store.kind}`, result] as const)),
      ]);
      return Object.fromEntries(entries);
    },
  };
}
export type ReadinessService = ReturnType<typeof createReadinessService>;
