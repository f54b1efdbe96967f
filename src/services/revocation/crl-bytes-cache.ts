/**
 * The DER of each CA's newest CRL this process has read. A CRL never changes once signed, so an entry is good for as
 * long as its number is the CA's newest, which every read still asks Postgres (a row without the bytes). Serving a
 * 50,000-entry CRL (2.4 MB) had read all of it from the database at each fetch of the public URL: 56-80 ms of server
 * CPU and a burst of memory per request. Least recently used CAs leave first once the entries pass `budgetBytes`.
 */
export interface CrlBytesCache {
  get(caId: string, crlNumber: bigint): Uint8Array | undefined;
  set(caId: string, crlNumber: bigint, der: Uint8Array): void;
}

export function createCrlBytesCache(budgetBytes = 64 * 1024 * 1024): CrlBytesCache {
  const entries = new Map<string, { crlNumber: bigint; der: Uint8Array }>();
  let bytes = 0;
  const drop = (caId: string) => {
    const entry = entries.get(caId);
    if (!entry) return;
    bytes -= entry.der.length;
    entries.delete(caId);
  };
  return {
    get(caId, crlNumber) {
      const entry = entries.get(caId);
      if (!entry || entry.crlNumber !== crlNumber) return undefined;
      // Most recently used last: Map keeps insertion order.
      entries.delete(caId);
      entries.set(caId, entry);
      return entry.der;
    },
    set(caId, crlNumber, der) {
      drop(caId);
      // One CRL larger than a quarter of the budget would evict most of the others at each read: not kept.
      if (der.length > budgetBytes / 4) return;
      for (const oldest of entries.keys()) {
        if (bytes + der.length <= budgetBytes) break;
        drop(oldest);
      }
      entries.set(caId, { crlNumber, der });
      bytes += der.length;
    },
  };
}
