/**
 * One process per PGlite data folder. PGlite is Postgres in this process, without a postmaster to refuse a second
 * one: two servers on one folder both started, both answered 200 to their writes, and after a restart one side's
 * writes were gone. A lock file beside the folder names the process holding it; one left by a process that no
 * longer runs is taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';

export const lockFileOf = (dataDir: string): string => `${dataDir}.lock`;

/** Takes the folder's lock, or throws naming the process that holds it; returns its release. */
export function lockDataDir(dataDir: string): () => void {
  const file = lockFileOf(dataDir);
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(holder) && isRunning(holder)) {
      throw new Error(
        `the embedded database ${dataDir} is in use by process ${holder}: one process per data folder ` +
          '(stop it, or give each process its own DATA_DIR, or share a Postgres through DATABASE_URL)',
      );
    }
    rmSync(file, { force: true }); // left by a process that is gone
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // running, under another user
  }
}
