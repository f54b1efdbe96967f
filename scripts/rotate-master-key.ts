/**
 * `npm run rotate-master-key`: re-wraps every sealed key and secret not yet under NEW_MASTER_KEY, in one transaction.
 * Run it with the deployment's configuration (MASTER_KEY, and OTHER_MASTER_KEYS if set: the keys that open what is
 * stored; DATABASE_URL or DATA_DIR; secret references such as MASTER_KEY_SECRET_ARN are read as the server reads
 * them). Either stop the service first and restart it with MASTER_KEY set to the new key, or move every instance to
 * the new key first, with the old one in OTHER_MASTER_KEYS (README: Master-key rotation).
 */
import { ConfigError, loadMaintenanceConfig } from '../src/config.ts';
import { rotateMasterKey } from '../src/keystore/master-key-rotation.ts';
import { openRuntime } from '../src/runtime.ts';
import { resolveSecretReferences } from '../src/secrets.ts';

const raw = (process.env.NEW_MASTER_KEY ?? '').trim();
const newMasterKey = Buffer.from(raw, 'base64');
if (newMasterKey.length !== 32 || newMasterKey.toString('base64') !== raw) {
  process.stderr.write('NEW_MASTER_KEY must be 32 bytes in base64 (openssl rand -base64 32)\n');
  process.exit(2);
}
let config: ReturnType<typeof loadMaintenanceConfig>;
try {
  config = loadMaintenanceConfig(await resolveSecretReferences(process.env));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`Configuration error: ${error.message}\n`);
  process.exit(2);
}
const runtime = await openRuntime(config, { migrate: false });
try {
  const counts = await rotateMasterKey(runtime.database.prisma, config, new Uint8Array(newMasterKey));
  process.stdout.write(
    `re-wrapped ${counts.caKeys} CA keys, ${counts.certificateKeys} certificate keys, ${counts.accessKeySecrets} access-key secrets ` +
      `and ${counts.eabKeys} ACME EAB keys; ` +
      'the service opens them with MASTER_KEY set to the new key (and no longer needs the old one in OTHER_MASTER_KEYS)\n',
  );
} finally {
  await runtime.close();
}
process.exit(0);
