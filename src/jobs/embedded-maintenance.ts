/**
 * The embedded database (PGlite) runs without autovacuum: without this job its planner never has statistics (a tag
 * search became a nested loop over every certificate, seconds long, holding the event loop) and the space of deleted
 * rows is never reused (each CRL signing rewrites its segments: gigabytes after thousands of revocations). Postgres'
 * own autovacuum does this work there.
 */
import type { Db } from '../db/database.ts';
import type { Job } from './job-runner.ts';

export const EMBEDDED_MAINTENANCE_JOB = 'embedded-database-maintenance';

/** VACUUM (ANALYZE) of the whole embedded database; unchanged pages are skipped, and ANALYZE samples. */
export function embeddedMaintenanceJob(db: Db, intervalSeconds = 600): Job {
  return {
    name: EMBEDDED_MAINTENANCE_JOB,
    intervalSeconds,
    async run() {
      await db.$executeRawUnsafe('VACUUM (ANALYZE)');
      return undefined;
    },
  };
}
