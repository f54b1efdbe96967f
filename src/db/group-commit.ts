/**
 * Group commit: requests that arrive while earlier batches are being written wait and are written together, so a
 * burst costs one statement or transaction per batch instead of one per request, with at most `maxInFlight`
 * batches (each holding a connection) at once. Nothing waits on a timer. A request only ever joins a batch sent
 * after it was queued, so its answer is as fresh as one of its own. Used by the issuing transaction (writes) and
 * the OCSP responder's status lookups (reads).
 */
export interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export interface GroupCommitOptions {
  /** Most requests in one batch. */
  maxBatch: number;
  /** Batches written at the same time (each holds one connection). */
  maxInFlight: number;
  /**
   * When a request meets a free slot: `next-turn` sends on the next turn of the event loop, collecting whatever
   * arrives in that turn (worth it for a whole transaction); `now` sends at once (a single cheap statement).
   */
  send: 'next-turn' | 'now';
}

/** `write` must settle every pending request of its batch (resolve or reject each); a rejection rejects them all. */
export function createGroupCommitter<T, R>(write: (batch: Pending<T, R>[]) => Promise<void>, options: GroupCommitOptions) {
  const queue: Pending<T, R>[] = [];
  let inFlight = 0;
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, options.maxBatch);
      inFlight++;
      write(batch)
        .catch((error: unknown) => {
          for (const pending of batch) pending.reject(error);
        })
        .finally(() => {
          inFlight--;
          schedule();
        });
    }
  }

  function schedule(): void {
    if (scheduled || queue.length === 0) return;
    if (options.send === 'now') {
      flush();
      return;
    }
    scheduled = true;
    setImmediate(flush);
  }

  return function submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      schedule();
    });
  };
}

/** The same for a statement answering a list of items with a list of results in the same order. */
export function createStatementBatcher<T, R>(run: (items: T[]) => Promise<R[]>, options: Omit<GroupCommitOptions, 'maxBatch'>) {
  return createGroupCommitter<T, R>(
    async (batch) => {
      const results = await run(batch.map((pending) => pending.item));
      for (const [at, pending] of batch.entries()) pending.resolve(results[at]);
    },
    { ...options, maxBatch: Number.POSITIVE_INFINITY },
  );
}
