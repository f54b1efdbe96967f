/**
 * The plain Node server: process concerns only (config, listen, jobs on timers, graceful shutdown), in one process or,
 * with WORKERS > 1, in workers under a primary that only supervises them.
 */
import cluster from 'node:cluster';
import { buildApp } from './app.ts';
import { mintAdminToken } from './auth/dev-token.ts';
import { checkNodeVersion, ConfigError, loadConfig } from './config.ts';
import { openRuntime } from './runtime.ts';
import { resolveSecretReferences } from './secrets.ts';
import { isLeadWorker, superviseWorkers } from './server-workers.ts';

async function main(): Promise<void> {
  checkNodeVersion();
  const env = await resolveSecretReferences(process.env);
  const config = loadConfig(env);
  // The primary checked the configuration (and wrote a development deployment's secrets) before any worker starts.
  if (config.workers > 1 && cluster.isPrimary) return superviseWorkers(config.workers);
  const lead = isLeadWorker();
  const runtime = await openRuntime(config);
  const app = await buildApp({ config, database: runtime.database, keyStores: runtime.keyStores });
  await app.listen({ host: config.host, port: config.port });
  if (config.runJobs && lead) app.jobRunner.start();

  if (config.development && lead) {
    // The JWT keys come as a pair (config.ts): the master key, the pair, or both are the data folder's.
    const generated = [env.MASTER_KEY ? '' : 'the master key', env.JWT_PRIVATE_KEY ? '' : 'the JWT signing key'].filter(Boolean);
    app.log.warn(
      { dataDir: config.dataDir },
      `DEVELOPMENT DEPLOYMENT: ${generated.join(' and ')} ${generated.length > 1 ? 'were' : 'was'} generated into the data folder. ` +
        'Never use them in production: set MASTER_KEY, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY (and NODE_ENV=production).',
    );
    if (process.stdout.isTTY) {
      // To the terminal only, never through the logger: the README's curl examples then work at once.
      const token = mintAdminToken(app.jwt, config.defaultDomainId, 24 * 3600);
      process.stdout.write(
        `\nDevelopment admin token for domain ${config.defaultDomainId} (24 h; \`npm run dev-token\` prints a fresh one):\n` +
          `export PCA_TOKEN=${token}\n` +
          `curl -H "Authorization: Bearer $PCA_TOKEN" ${config.publicBaseUrl}/v1/private-certificate-authorities\n\n`,
      );
    } else {
      // Output that is not a terminal is a log stream (a file, a collector): a 24 h admin token must not land there.
      app.log.warn('development admin token not printed: the output is not a terminal; `npm run dev-token` prints one');
    }
  }

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    // Requests held by a stuck database (a lock, a frozen server) or a trickling client must not hold the process past
    // an orchestrator's grace period (Kubernetes: 30 s, then SIGKILL): the process leaves by itself first, saying so.
    setTimeout(() => {
      app.log.error({ graceMs: config.shutdownGraceMs }, 'requests still running after the shutdown grace period: exiting');
      process.exit(1);
    }, config.shutdownGraceMs).unref();
    await app.close();
    await runtime.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError ? 'Configuration error' : 'Failed to start'}: ${(error as Error).message}\n`);
  if (!(error instanceof ConfigError)) process.stderr.write(`${(error as Error).stack ?? ''}\n`);
  process.exit(1);
});
