/**
 * Debian's certbot and lego against a started HTTPS server on loopback (issue #16): each obtains (certbot: http-01
 * standalone; lego: http-01 and tls-alpn-01), renews and revokes a certificate with External Account Binding, and
 * openssl verifies every certificate against the CA. Skipped, saying why, where a client is not installed
 * (.ci/run installs both).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { CA } from '../ca/support.ts';
import { openssl, pemBlocks, scratch, verifyStrict } from '../certificates/support.ts';
import { acmeCa, eabKey, serverCertificate, startAcmeServer } from './support.ts';

const run = promisify(execFile);
const installed = async (command: string) =>
  run('which', [command]).then(
    () => true,
    () => false,
  );
const hasCertbot = await installed('certbot');
const hasLego = await installed('lego');
if (!hasCertbot) t.comment('certbot is not installed (apt-get install certbot): its tests are skipped');
if (!hasLego) t.comment('lego is not installed (apt-get install lego): its tests are skipped');

const NAMES = ['certbot.example.internal', 'lego.example.internal', 'alpn.example.internal'];
const dir = await scratch('acme-clients');
const serverTls = await serverCertificate(dir);
const server = await startAcmeServer({ tls: serverTls, env: { ACME_STATIC_HOSTS: NAMES.map((name) => `${name}=127.0.0.1`).join(',') } });
t.teardown(() => server.close());
const caId = await acmeCa(server.api, { enabled: true, allowed_identifiers: ['*.example.internal'] });
const rootPem = pemBlocks((await server.api.call('POST', `${CA}/${caId}/export`)).body.certificate)[0]!;
const prisma = server.harness.database.prisma;

/** The certificate row of a PEM leaf, read back by serial. */
async function rowOf(leafPem: string) {
  const serial = (
    await openssl(['x509', '-in', await dir.write(`${Date.now()}-${Math.random()}.pem`, leafPem), '-noout', '-serial'])
  ).stdout
    .split('=')[1]!
    .trim()
    .toLowerCase();
  return prisma.certificate.findFirstOrThrow({ where: { issuerId: caId, serialNumber: serial.replace(/^0+/, '') } });
}

async function judged(t: Test, label: string, chainPem: string): Promise<string> {
  const blocks = pemBlocks(chainPem);
  const verified = await verifyStrict(dir, blocks[0]!, rootPem, [], ['-purpose', 'sslserver']);
  t.ok(verified.ok, `${label}: openssl verify against the CA (${verified.stdout.trim()}${verified.stderr.trim()})`);
  return blocks[0]!;
}

t.test(
  'certbot certonly --standalone (http-01): obtain, renew, revoke',
  { skip: hasCertbot ? false : 'certbot not installed' },
  async (t) => {
    const eab = await eabKey(server.api, caId);
    const base = dir.file('certbot');
    const common = ['--config-dir', `${base}/config`, '--work-dir', `${base}/work`, '--logs-dir', `${base}/logs`, '--non-interactive'];
    const env = { ...process.env, REQUESTS_CA_BUNDLE: serverTls.certFile };
    const certbot = (args: string[]) => run('certbot', [...args, ...common], { env, timeout: 180_000 });
    await certbot([
      'certonly',
      '--standalone',
      '--http-01-port',
      String(server.http01Port),
      '--http-01-address',
      '127.0.0.1',
      '--server',
      eab.directory_url,
      // name=value: a base64url key may begin with '-', which certbot's argparse would take for an option.
      `--eab-kid=${eab.kid}`,
      `--eab-hmac-key=${eab.hmac_key}`,
      '--agree-tos',
      '--register-unsafely-without-email',
      '-d',
      NAMES[0]!,
    ]);
    const live = `${base}/config/live/${NAMES[0]}`;
    const first = await judged(t, 'certbot obtained', await readFile(`${live}/fullchain.pem`, 'utf8'));
    t.equal((await rowOf(first)).status, 'ISSUED', 'a certificate of the CA');

    await certbot(['renew', '--force-renewal', '--no-random-sleep-on-renew']);
    const renewed = await judged(t, 'certbot renewed', await readFile(`${live}/fullchain.pem`, 'utf8'));
    t.not(renewed, first, 'renewal brought a new certificate');

    await certbot([
      'revoke',
      '--cert-path',
      `${live}/cert.pem`,
      '--reason',
      'superseded',
      '--no-delete-after-revoke',
      '--server',
      eab.directory_url,
    ]);
    t.equal((await rowOf(renewed)).status, 'REVOKED', 'revoked through ACME');
    const listed = await server.api.call('GET', `/v1/private-certificates/${(await rowOf(renewed)).id}`);
    t.equal(listed.body.status, 'REVOKED', 'and so in the REST API');
  },
);

t.test('lego: http-01 and tls-alpn-01 each obtain, renew, revoke', { skip: hasLego ? false : 'lego not installed' }, async (t) => {
  const eab = await eabKey(server.api, caId);
  const env = { ...process.env, LEGO_CA_CERTIFICATES: serverTls.certFile };
  const path = dir.file('lego');
  const lego = (domain: string, solver: string[], command: string[]) =>
    run(
      'lego',
      [
        '--server',
        eab.directory_url,
        '--eab',
        `--kid=${eab.kid}`,
        `--hmac=${eab.hmac_key}`,
        '--email',
        'ops@example.internal',
        '--accept-tos',
        '--path',
        path,
        '-d',
        domain,
        ...solver,
        ...command,
      ],
      { env, timeout: 180_000 },
    );
  const http = ['--http', '--http.port', `127.0.0.1:${server.http01Port}`];
  const alpn = ['--tls', '--tls.port', `127.0.0.1:${server.tlsAlpn01Port}`];
  const certificate = (domain: string) => readFile(`${path}/certificates/${domain}.crt`, 'utf8');

  await lego(NAMES[1]!, http, ['run']);
  const first = await judged(t, 'lego http-01', await certificate(NAMES[1]!));
  await lego(NAMES[1]!, http, ['renew', '--days', '3650', '--no-random-sleep']);
  const renewed = await judged(t, 'lego renewed', await certificate(NAMES[1]!));
  t.not(renewed, first, 'renewal brought a new certificate');
  await lego(NAMES[1]!, http, ['revoke']);
  t.equal((await rowOf(renewed)).status, 'REVOKED', 'lego revoked it');

  await lego(NAMES[2]!, alpn, ['run']);
  const overAlpn = await judged(t, 'lego tls-alpn-01', await certificate(NAMES[2]!));
  const order = await prisma.acmeOrder.findFirstOrThrow({ where: { certificateId: (await rowOf(overAlpn)).id } });
  const authorization = await prisma.acmeAuthorization.findFirstOrThrow({ where: { orderId: order.id } });
  const validated = await prisma.acmeChallenge.findFirstOrThrow({ where: { authorizationId: authorization.id, status: 'valid' } });
  t.equal(validated.type, 'tls-alpn-01', 'validated by tls-alpn-01');
  await lego(NAMES[2]!, alpn, ['renew', '--days', '3650', '--no-random-sleep']);
  const alpnRenewed = await judged(t, 'lego tls-alpn-01 renewed', await certificate(NAMES[2]!));
  t.not(alpnRenewed, overAlpn, 'renewal over tls-alpn-01 brought a new certificate');
  await lego(NAMES[2]!, alpn, ['revoke']);
  t.equal((await rowOf(alpnRenewed)).status, 'REVOKED', 'lego revoked the tls-alpn-01 certificate');
});
