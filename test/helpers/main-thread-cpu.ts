/**
 * CPU time of the calling (main) thread, from Linux's /proc/thread-self/stat, in milliseconds (10 ms resolution).
 * Unlike wall time it does not grow when a loaded machine preempts the process, and unlike process.cpuUsage() it
 * leaves out libuv's pool and worker threads: it is what a request costs the event loop. Undefined off Linux.
 */
import { existsSync, readFileSync } from 'node:fs';

const STAT = '/proc/thread-self/stat';
const MS_PER_TICK = 10; // USER_HZ is 100 on every Linux architecture Node supports

export const mainThreadCpuAvailable = existsSync(STAT);

export function mainThreadCpuMs(): number {
  const stat = readFileSync(STAT, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK;
}
