/**
 * Group commit: requests that arrive while earlier batches are being written wait and are written together, so a
 * burst costs one transaction per batch instead of one per request. Nothing waits on a timer: a request arriving
 * at an idle committer is flushed on the next turn of the event loop (collecting whatever arrived in that turn).
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
}

/** `write` must settle every pending request of its batch (resolve or reject each). */
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
