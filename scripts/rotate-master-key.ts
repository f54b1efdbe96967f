/**
 * `npm run rotate-master-key`: re-wraps every sealed key and secret under NEW_MASTER_KEY, in one transaction.
 * Run it with the deployment's configuration (MASTER_KEY = the current key, DATABASE_URL or DATA_DIR), stop the
 * service first, then restart it with MASTER_KEY set to the new key.
 */
import { loadConfig } from '../src/config.ts';
import { rotateMasterKey } from '../src/keystore/master-key-rotation.ts';
import { openRuntime } from '../src/runtime.ts';

const raw = process.env.NEW_MASTER_KEY ?? '';
const newMasterKey = Buffer.from(raw, 'base64');
if (newMasterKey.length !== 32 || newMasterKey.toString('base64') !== raw) {
  process.stderr.write('NEW_MASTER_KEY must be 32 bytes in base64 (openssl rand -base64 32)\n');
  process.exit(2);
}
const config = loadConfig();
const runtime = await openRuntime(config, { migrate: false });
try {
  const counts = await rotateMasterKey(runtime.database.prisma, config.masterKey, new Uint8Array(newMasterKey));
  process.stdout.write(
    `re-wrapped ${counts.caKeys} CA keys, ${counts.certificateKeys} certificate keys, ${counts.accessKeySecrets} access-key secrets ` +
      `and ${counts.eabKeys} ACME EAB keys; ` +
      'now restart the service with MASTER_KEY set to the new key\n',
  );
} finally {
  await runtime.close();
}
process.exit(0);
