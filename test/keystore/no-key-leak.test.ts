/**
 * Private keys never leave custody by accident. A full journey runs against a started server over a real
 * Postgres; then the API responses (all but the one explicit export of a server-made key), every log line and a
 * pg_dump of the database are searched for each private key in its DER (hex, as pg_dump prints bytea), base64,
 * base64url and PEM-line forms. Access-key secrets must not appear in the logs or the dump either.
 */
import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { promisify } from 'node:util';
import t from 'tap';
import { createSealer } from '../../src/keystore/sealing.ts';
import { KEY_ARGS, opensslCsr, scratch } from '../certificates/support.ts';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';

const run = promisify(execFile);
// pg_dump needs a real server.
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t));
t.teardown(() => harness.close());
const base = await harness.app.listen({ host: '127.0.0.1', port: 0 });
const headers = { authorization: `Bearer ${harness.token()}`, 'content-type': 'application/json' };
const responses: string[] = [];

async function call(method: string, path: string, body?: unknown, keep = true): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (keep) responses.push(text);
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Every textual form a private key could take in a response, a log line or a pg_dump. */
function leakForms(der: Buffer): string[] {
  const base64 = der.toString('base64');
  const middle = der.subarray(30, 54); // inside the private key material, aligned to base64 groups
  return [
    der.toString('hex'),
    base64,
    der.toString('base64url'),
    middle.toString('hex'),
    middle.toString('base64'),
    ...(base64.match(/.{64}/g) ?? []).slice(1), // PEM body lines past the algorithm header
  ];
}

const dn = { country: 'CN', state: 'zhejiang', locality: 'hangzhou', organization: 'huawei-cloud', organizational_unit: 'container' };

t.test('a full journey leaves no private key in responses, logs or the database', async (t) => {
  const root = await call('POST', '/v1/private-certificate-authorities', {
    type: 'ROOT',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: { ...dn, common_name: 'leak-root' },
    validity: { type: 'YEAR', value: 2 },
  });
  const sub = await call('POST', '/v1/private-certificate-authorities', {
    type: 'SUBORDINATE',
    issuer_id: root.ca_id,
    key_algorithm: 'RSA2048',
    signature_algorithm: 'SHA256',
    path_length: 0,
    distinguished_name: { ...dn, common_name: 'leak-sub' },
    validity: { type: 'YEAR', value: 1 },
  });
  await call('POST', `/v1/private-certificate-authorities/${sub.ca_id}/crl/enable`, { valid_days: 7 });
  await call('POST', `/v1/private-certificate-authorities/${sub.ca_id}/export`);
  const dir = await scratch('leak');
  const { csr } = await opensslCsr(dir, 'leak-leaf', [...KEY_ARGS.p256], ['-subj', '/CN=leak.example.com']);
  const byCsr = await call('POST', '/v1/private-certificates/csr', { issuer_id: sub.ca_id, csr, validity: { type: 'DAY', value: 30 } });
  const made = await call('POST', '/v1/private-certificates', {
    issuer_id: sub.ca_id,
    key_algorithm: 'EC256',
    distinguished_name: { common_name: 'server-made.example.com' },
    validity: { type: 'DAY', value: 30 },
  });
  await call('GET', `/v1/private-certificates/${made.certificate_id}`);
  // The one response allowed to carry a key: the explicit export of a server-made key. It is not searched.
  const exported = await call(
    'POST',
    `/v1/private-certificates/${made.certificate_id}/export`,
    { is_compressed: 'false', type: 'OTHER' },
    false,
  );
  await call('POST', `/v1/private-certificates/${byCsr.certificate_id}/revoke`, { reason: 'KEY_COMPROMISE' });
  await call('GET', `/v1/private-certificate-authorities/${sub.ca_id}/crl`);
  const accessKey = await call('POST', '/v1/access-keys', { description: 'leak check' }, false);
  await call('GET', '/v1/access-keys');
  await call('GET', '/v1/private-certificate-authorities');
  await call('GET', '/v1/audit-events?limit=100');

  const sealer = createSealer(harness.config.masterKey);
  const caRows = await harness.database.prisma.certificateAuthority.findMany({
    where: { id: { in: [root.ca_id as string, sub.ca_id as string] } },
  });
  const keys = new Map<string, Buffer>();
  for (const row of caRows) {
    if (row.keyStore !== 'software') continue; // PKCS#11 keys never leave the token (pkcs11.test.ts checks the flags)
    const [, keyId, sealed] = /^sw1:([^:]+):(.+)$/.exec(row.keyRef!)!;
    keys.set(`CA ${row.commonName}`, Buffer.from(sealer.unseal(sealed, keyId)));
  }
  const serverKeyPem = String(exported.private_key);
  keys.set('server-made certificate key', createPrivateKey(serverKeyPem).export({ format: 'der', type: 'pkcs8' }) as Buffer);
  t.ok(keys.size >= 1, `searching for ${keys.size} private keys`);

  const { stdout: dump } = await run('pg_dump', ['--no-owner', '--data-only', harness.database.url!], {
    maxBuffer: 256 * 1024 * 1024,
  }).catch(() =>
    run(`${process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin'}/pg_dump`, ['--no-owner', '--data-only', harness.database.url!], {
      maxBuffer: 256 * 1024 * 1024,
    }),
  );
  t.match(dump, /COPY public\.certificate_authorities/, 'the dump holds the CA table');
  t.match(dump, new RegExp(String(sub.ca_id)), 'and our CAs');
  const places = { 'API responses': responses.join('\n'), logs: harness.logs.text, 'database dump': dump };
  t.ok(harness.logs.lines.length > 10, 'logs were captured');

  for (const [name, der] of keys) {
    for (const [where, text] of Object.entries(places)) {
      const leaked = leakForms(der).filter((form) => text.includes(form));
      t.same(leaked, [], `${name}: absent from ${where}`);
    }
  }
  const secret = String((accessKey.credential as { secret: string }).secret);
  t.equal(secret.length, 40);
  t.notOk(harness.logs.text.includes(secret), 'the access-key secret is not logged');
  t.notOk(dump.includes(secret), 'the access-key secret is sealed in the database');
});
