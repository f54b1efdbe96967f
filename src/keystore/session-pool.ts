/**
 * A fixed set of sessions, each lent to one operation at a time: a PKCS#11 session runs one operation at a time
 * (CKR_OPERATION_ACTIVE otherwise). Generic over the session type, so its queueing is tested without a token.
 */
export interface SessionPool<S> {
  run<T>(op: (session: S) => Promise<T> | T): Promise<T>;
  /**
   * Takes every session once the operations queued before it have finished; the pool is unusable afterwards:
   * a later `run` fails at once with SessionPoolDrainedError instead of waiting for a session that never returns.
   */
  drain(): Promise<S[]>;
}

/** `run` on a drained pool: the caller takes its operation to the pool that replaced this one. */
export class SessionPoolDrainedError extends Error {
  constructor() {
    super('the session pool is drained');
    this.name = 'SessionPoolDrainedError';
  }
}

export function createSessionPool<S>(sessions: S[]): SessionPool<S> {
  const idle = [...sessions];
  const waiting: ((session: S) => void)[] = [];
  let drained = false;

  const acquire = (): Promise<S> => (idle.length > 0 ? Promise.resolve(idle.pop()!) : new Promise((resolve) => waiting.push(resolve)));

  function release(session: S): void {
    const next = waiting.shift();
    if (next) next(session);
    else idle.push(session);
  }

  return {
    async run(op) {
      if (drained) throw new SessionPoolDrainedError();
      const session = await acquire();
      try {
        return await op(session);
      } finally {
        release(session);
      }
    },
    drain: () => {
      drained = true;
      return Promise.all(sessions.map(acquire));
    },
  };
}
