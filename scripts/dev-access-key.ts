/**
 * Creates an access key pair (every action) for a development deployment, directly in its database, and prints
 * it in the environment variables the Huawei SDKs read:
 *   npm run dev-access-key                 -> the default domain
 *   npm run dev-access-key -- --domain X   -> domain X
 * Uses the same configuration (env, data folder) as `npm start`. The embedded PGlite database can be opened by one
 * process at a time: stop the server first, or create the key over HTTP with a dev token instead
 * (`POST /v1/access-keys` with `Authorization: Bearer $(npm run -s dev-token)`).
 */
import { parseArgs } from 'node:util';
import { ACTIONS } from '../src/auth/actions.ts';
import { isDomainId } from '../src/config/domain-id.ts';
import { systemClock } from '../src/clock.ts';
import { loadConfig } from '../src/config.ts';
import { resolveSecretReferences } from '../src/secrets.ts';
import { openRuntime } from '../src/runtime.ts';
import { createSealer } from '../src/keystore/sealing.ts';
import { createAccessKeyService } from '../src/services/access-keys/access-key-service.ts';
import { systemContext } from '../src/services/context.ts';

const { values } = parseArgs({ options: { domain: { type: 'string' }, description: { type: 'string' } } });
const config = loadConfig(await resolveSecretReferences(process.env));
const domain = values.domain ?? config.defaultDomainId;
if (!isDomainId(domain)) {
  process.stderr.write('--domain must be 1-64 characters without ":" or spaces\n');
  process.exit(2);
}
const runtime = await openRuntime(config);
try {
  const accessKeys = createAccessKeyService({
    db: runtime.database.prisma,
    sql: runtime.database.query,
    clock: systemClock,
    config,
    sealer: createSealer(config.masterKey, config.otherMasterKeys),
  });
  const { key, secret } = await accessKeys.create(systemContext('dev-access-key', domain), new Set(ACTIONS), {
    description: values.description ?? 'development access key',
  });
  process.stdout.write(`HUAWEICLOUD_SDK_AK=${key.access}\nHUAWEICLOUD_SDK_SK=${secret}\nHUAWEICLOUD_SDK_DOMAIN_ID=${domain}\n`);
} finally {
  await runtime.close();
}
process.exit(0);
