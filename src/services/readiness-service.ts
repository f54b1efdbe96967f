/** What /ready reports: each dependency the service needs to do its work. */
import type { DatabaseHandle } from '../db/database.ts';
import type { KeyStore } from '../keystore/key-store.ts';

export interface ReadinessDependencies {
  database: Pick<DatabaseHandle, 'ping' | 'prisma'>;
  keyStores: readonly KeyStore[];
}

export function createReadinessService({ database, keyStores }: ReadinessDependencies) {
  /** A CA key this deployment stored in the store, so the check proves the master key / token really hold it. */
  async function sampleKeyRef(store: KeyStore): Promise<string | undefined> {
    const row = await database.prisma.certificateAuthority.findFirst({
      where: { keyStore: store.kind, keyRef: { not: null }, removedAt: null },
      select: { keyRef: true },
    });
    return row?.keyRef ?? undefined;
  }

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
        ...keyStores.map((store) =>
          probe(async () => store.check(await sampleKeyRef(store))).then((result) => [`key_store_${store.kind}`, result] as const),
        ),
      ]);
      return Object.fromEntries(entries);
    },
  };
}
export type ReadinessService = ReturnType<typeof createReadinessService>;
