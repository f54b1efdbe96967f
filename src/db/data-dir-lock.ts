/**
 * One process per PGlite data folder. PGlite is Postgres in this process, without a postmaster to refuse a second
 * one: two servers on one folder both started, both answered 200 to their writes, and after a restart one side's
 * writes were gone. The lock is a listening Unix socket named after the folder: in Linux's abstract namespace, which
 * the kernel frees the moment its process dies (a crash, SIGKILL, a container restart that reuses the pid leave
 * nothing behind), and taking it is atomic, so starters racing for it get one holder. A refused starter asks the
 * holder for its pid to name it. Elsewhere (macOS) the socket is a file in the temporary folder, unlinked when stale.
 */
import { createHash } from 'node:crypto';
import { realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function lockNameOf(dataDir: string): string {
  const digest = createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 32);
  return process.platform === 'linux' ? `\0pca-pglite-${digest}` : path.join(os.tmpdir(), `pca-pglite-${digest}.sock`);
}

/** Takes the folder's lock (the folder must exist), or throws naming the process that holds it; returns its release. */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const name = lockNameOf(dataDir);
  const holder = net.createServer((socket) => socket.end(`${process.pid}\n`));
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        holder.once('error', reject);
        holder.listen(name, () => {
          holder.off('error', reject);
          resolve();
        });
      });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      const pid = await holderPid(name);
      // Only a socket file can outlive its process (no one answers it): removed once, then taken.
      if (pid === undefined && !name.startsWith('\0') && attempt === 0) {
        rmSync(name, { force: true });
        continue;
      }
      throw new Error(
        `the embedded database ${dataDir} is in use by ${pid ? `process ${pid}` : 'another process'}: one process per data ` +
          'folder (stop it, or give each process its own DATA_DIR, or share a Postgres through DATABASE_URL)',
      );
    }
  }
  // The lock must not keep a finished script alive.
  holder.unref();
  return () => new Promise<void>((resolve) => holder.close(() => resolve()));
}

/** What the holder answers on its socket: its pid, or undefined when no one answers. */
function holderPid(name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect(name);
    socket.setTimeout(2000, () => socket.destroy());
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => {
      const pid = Number.parseInt(answer, 10);
      resolve(Number.isInteger(pid) ? pid : undefined);
    });
  });
}
