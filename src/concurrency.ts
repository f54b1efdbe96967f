/**
 * At most `limit` of the tasks given to the returned function run at once; the others wait their turn, first come
 * first served. For work that takes a core or a libuv thread for long (a worker's 100,000 hashes, an RSA key pair):
 * unbounded, a burst of it from one tenant held every core or pool thread and stalled everyone else's requests.
 */
export function concurrencyLimit(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve)); // the finishing task hands its slot over
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/**
 * Tasks given under one key run one at a time, first come first served; tasks of other keys do not wait for them.
 * A key is forgotten once its last task ends.
 */
export function serialPerKey(): <T>(key: string, task: () => Promise<T>) => Promise<T> {
  const queues = new Map<string, { run: <T>(task: () => Promise<T>) => Promise<T>; tasks: number }>();
  return async (key, task) => {
    const queue = queues.get(key) ?? { run: concurrencyLimit(1), tasks: 0 };
    queues.set(key, queue);
    queue.tasks++;
    try {
      return await queue.run(task);
    } finally {
      if (--queue.tasks === 0) queues.delete(key);
    }
  };
}
