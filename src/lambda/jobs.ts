/** The scheduled functions: the services and jobs only, without the HTTP app. */
import pino from 'pino';
import { systemClock } from '../clock.ts';
import { checkNodeVersion, loadConfig } from '../config.ts';
import { LOG_REDACT_PATHS } from '../http/plugins/access-log.ts';
import { JobRunner } from '../jobs/job-runner.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { openRuntime } from '../runtime.ts';
import { resolveSecretReferences } from '../secrets.ts';
import { createJobs, createServices } from '../services/index.ts';
import { jobHandlerFor } from './adapters.ts';

checkNodeVersion();
const config = loadConfig(await resolveSecretReferences(process.env), 'lambda');
const runtime = await openRuntime(config, { migrate: false });
// Services count into metrics; a scheduled function has no /metrics, so they stay in this container.
const metrics = createMetrics(runtime.database.poolStats);
const log = pino({ level: config.logLevel, redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' } });
const deps = { config, database: runtime.database, keyStores: runtime.keyStores, clock: systemClock, metrics, log };

export const handler = jobHandlerFor(new JobRunner(createJobs(createServices(deps), deps), () => systemClock.now(), log, metrics));
