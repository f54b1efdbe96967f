/**
 * Many shared holders or one exclusive holder, admitted in arrival order: an exclusive task waits for the shared
 * ones before it, and shared tasks arriving after it wait for it, so a stream of shared tasks cannot starve it.
 * Generic, so its ordering is tested without a token.
 */
export interface ReadWriteLock {
  shared<T>(task: () => Promise<T>): Promise<T>;
  exclusive<T>(task: () => Promise<T>): Promise<T>;
}

export function createReadWriteLock(): ReadWriteLock {
  let sharedHolders = 0;
  let exclusiveHeld = false;
  const waiting: { exclusive: boolean; admit: () => void }[] = [];

  const free = (exclusive: boolean) => !exclusiveHeld && (!exclusive || sharedHolders === 0);
  function take(exclusive: boolean): void {
    if (exclusive) exclusiveHeld = true;
    else sharedHolders++;
  }
  function release(exclusive: boolean): void {
    if (exclusive) exclusiveHeld = false;
    else sharedHolders--;
    while (waiting.length > 0 && free(waiting[0].exclusive)) {
      const next = waiting.shift()!;
      take(next.exclusive);
      next.admit();
    }
  }

  async function hold<T>(exclusive: boolean, task: () => Promise<T>): Promise<T> {
    if (waiting.length === 0 && free(exclusive)) take(exclusive);
    else await new Promise<void>((admit) => waiting.push({ exclusive, admit }));
    try {
      return await task();
    } finally {
      release(exclusive);
    }
  }

  return { shared: (task) => hold(false, task), exclusive: (task) => hold(true, task) };
}
