/**
 * Prints an admin bearer token (every action) for a development deployment:
 *   npm run dev-token                 -> the default domain
 *   npm run dev-token -- --domain X   -> domain X (a second tenant without an identity provider)
 *   npm run dev-token -- --ttl 600    -> valid 600 s (default JWT_TTL_SECONDS; at most 30 days)
 * Uses the same configuration (env, secret references, data folder) as `npm start`.
 */
import fastifyJwt from '@fastify/jwt';
import Fastify from 'fastify';
import { parseArgs } from 'node:util';
import { mintAdminToken } from '../src/auth/dev-token.ts';
import { jwtPluginOptions } from '../src/auth/jwt.ts';
import { isDomainId } from '../src/config/domain-id.ts';
import { loadConfig } from '../src/config.ts';
import { resolveSecretReferences } from '../src/secrets.ts';

const { values } = parseArgs({ options: { domain: { type: 'string' }, ttl: { type: 'string' } } });
const config = loadConfig(await resolveSecretReferences(process.env));
const domain = values.domain ?? config.defaultDomainId;
if (!isDomainId(domain)) {
  process.stderr.write('--domain must be 1-64 characters without ":" or spaces\n');
  process.exit(2);
}
const MAX_TTL_SECONDS = 30 * 86_400;
const ttl = Number(values.ttl ?? config.jwt.ttlSeconds);
if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
  process.stderr.write(`--ttl must be whole seconds from 1 to ${MAX_TTL_SECONDS} (30 days)\n`);
  process.exit(2);
}
const app = Fastify();
await app.register(fastifyJwt, jwtPluginOptions(config));
await app.ready();
process.stdout.write(`${mintAdminToken(app.jwt, domain, ttl)}\n`);
await app.close();
