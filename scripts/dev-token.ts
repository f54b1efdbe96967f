/**
 * Prints an admin bearer token (every action) for a development deployment:
 *   npm run dev-token                 -> the default domain
 *   npm run dev-token -- --domain X   -> domain X (a second tenant without an identity provider)
 * Uses the same configuration (env, data folder) as `npm start`.
 */
import fastifyJwt from '@fastify/jwt';
import Fastify from 'fastify';
import { parseArgs } from 'node:util';
import { mintAdminToken } from '../src/auth/dev-token.ts';
import { jwtPluginOptions } from '../src/auth/jwt.ts';
import { isDomainId } from '../src/config/domain-id.ts';
import { loadConfig } from '../src/config.ts';

const { values } = parseArgs({ options: { domain: { type: 'string' }, ttl: { type: 'string' } } });
const config = loadConfig();
const domain = values.domain ?? config.defaultDomainId;
if (!isDomainId(domain)) {
  process.stderr.write('--domain must be 1-64 characters without ":" or spaces\n');
  process.exit(2);
}
const app = Fastify();
await app.register(fastifyJwt, jwtPluginOptions(config));
await app.ready();
process.stdout.write(`${mintAdminToken(app.jwt, domain, Number(values.ttl ?? config.jwt.ttlSeconds))}\n`);
await app.close();
