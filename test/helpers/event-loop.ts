/**
 * Which of `answers` were made in place: a libuv pool job's or a worker thread's answer needs the event loop's next
 * poll, so draining microtasks alone settles only the promises whose work was done on this thread.
 */
export async function settledWithoutTheLoop(answers: Promise<unknown>[]): Promise<boolean[]> {
  const settled = answers.map(() => false);
  for (const [i, answer] of answers.entries()) answer.then(() => (settled[i] = true));
  for (let i = 0; i < 20; i++) await Promise.resolve();
  return settled;
}

/** The next turn of the event loop (after this one's I/O and immediates). */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
