/** What /ready reports: each dependency the service needs to do its work. */
import type { DatabaseHandle } from '../db/database.ts';
import type { KeyStore } from '../keystore/key-store.ts';

export interface ReadinessDependencies {
  database: Pick<DatabaseHandle, 'ping' | 'prisma'>;
  keyStores: readonly KeyStore[];
}

/**
 * How long a check may take before it counts as failed: a database that stopped answering would otherwise hold /ready
 * for as long as the query's own bound (QUERY_WAIT_MS), past any orchestrator's probe timeout. A healthy check
 * answers in milliseconds.
 */
export const READINESS_CHECK_WAIT_MS = 3_000;

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
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${READINESS_CHECK_WAIT_MS} ms`)), READINESS_CHECK_WAIT_MS);
    });
    try {
      // The check left running ends on its own bounds (the query's, the pool's), its outcome unread.
      await Promise.race([check(), late]);
      return 'ok';
    } catch (error) {
      return (error as Error).message || 'failed';
    } finally {
      clearTimeout(timer);
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
