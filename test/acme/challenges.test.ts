/**
 * The server speaking HTTPS itself (TLS_CERT_FILE/TLS_KEY_FILE) and the other two challenge types, with acme-client:
 * dns-01 (a wildcard and a plain name) against a DNS server the test starts (ACME_DNS_SERVER), and tls-alpn-01
 * against the client's own TLS responder, its address resolved through that DNS server. openssl judges the chains.
 */
import acme from 'acme-client';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import t from 'tap';
import { pemBlocks, scratch, verifyStrict, openssl } from '../certificates/support.ts';
import { acmeCa, dnsServer, eabKey, serverCertificate, startAcmeServer } from './support.ts';

const dir = await scratch('acme-challenges');
const serverTls = await serverCertificate(dir);
const dns = await dnsServer();
t.teardown(() => dns.close());
const server = await startAcmeServer({ tls: serverTls, env: { ACME_DNS_SERVER: `127.0.0.1:${dns.port}` } });
t.teardown(() => server.close());
// acme-client's HTTP client, trusting the server's own certificate (as REQUESTS_CA_BUNDLE does for certbot).
acme.axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(serverTls.certFile) });
const caId = await acmeCa(server.api, { enabled: true, allowed_identifiers: ['*.example.internal'] });
const rootPem = pemBlocks((await server.api.call('POST', `/v1/private-certificate-authorities/${caId}/export`)).body.certificate)[0]!;

async function newClient() {
  const eab = await eabKey(server.api, caId);
  return new acme.Client({
    directoryUrl: eab.directory_url,
    accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
    externalAccountBinding: { kid: eab.kid, hmacKey: eab.hmac_key },
  });
}

t.test('HTTPS: the directory is served with the configured certificate', async (t) => {
  const response = await fetch(`${server.baseUrl}/acme/${caId}/directory`).catch((error: Error) => error);
  t.ok(response instanceof Error, 'an untrusting client refuses the self-signed server certificate, so TLS is real');
  const directory = await new Promise<Record<string, unknown>>((resolve, reject) => {
    https
      .get(`${server.baseUrl}/acme/${caId}/directory`, { ca: readFileSync(serverTls.certFile) }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(JSON.parse(body)));
      })
      .on('error', reject);
  });
  t.match(directory, { newNonce: `${server.baseUrl}/acme/${caId}/new-nonce`, meta: { externalAccountRequired: true } });
  t.match((await eabKey(server.api, caId)).directory_url, /^https:\/\/127\.0\.0\.1:/, 'EAB keys name the HTTPS directory');
});

t.test('dns-01: a wildcard and a plain name, TXT records served by the test DNS server', async (t) => {
  const client = await newClient();
  const names = ['*.example.internal', 'api.example.internal'];
  const [, csr] = await acme.crypto.createCsr({ commonName: names[1], altNames: names });
  const certificate = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['dns-01'],
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
      const name = `_acme-challenge.${authz.identifier.value}`;
      dns.txt.set(name, [...(dns.txt.get(name) ?? []), keyAuthorization]);
    },
    challengeRemoveFn: async () => undefined,
  });
  t.ok(
    dns.queries.some((query) => query === 'TXT _acme-challenge.example.internal'),
    `the server asked the DNS server (${dns.queries.join(', ')})`,
  );
  const blocks = pemBlocks(certificate);
  const verified = await verifyStrict(dir, blocks[0]!, rootPem);
  t.ok(verified.ok, `openssl verify: ${verified.stdout}${verified.stderr}`);
  const text = (await openssl(['x509', '-in', await dir.write('dns01.pem', blocks[0]!), '-noout', '-ext', 'subjectAltName'])).stdout;
  t.match(text, 'DNS:*.example.internal');
  t.match(text, 'DNS:api.example.internal');
});

t.test('dns-01 with a wrong TXT record fails the order with unauthorized', async (t) => {
  const client = await newClient();
  await client.createAccount({ termsOfServiceAgreed: true });
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: 'wrong.example.internal' }] });
  const [authz] = await client.getAuthorizations(order);
  const challenge = authz!.challenges.find((item) => item.type === 'dns-01')!;
  dns.txt.set('_acme-challenge.wrong.example.internal', ['not-the-digest']);
  await client.completeChallenge(challenge);
  const after = await client.getOrder(order);
  t.equal(after.status, 'invalid');
  const [failed] = await client.getAuthorizations(after);
  t.match(
    failed!.challenges.find((item) => item.type === 'dns-01'),
    { status: 'invalid', error: { type: 'urn:ietf:params:acme:error:unauthorized' } },
  );
});

t.test('tls-alpn-01: the client answers on ACME_TLSALPN01_PORT with the acmeIdentifier certificate', async (t) => {
  dns.addresses.set('edge.example.internal', '127.0.0.1');
  const contexts = new Map<string, tls.SecureContext>();
  const responder = tls.createServer({
    ALPNProtocols: ['acme-tls/1'],
    SNICallback: (name, done) => done(null, contexts.get(name)),
  });
  await new Promise<void>((resolve) => responder.listen(server.tlsAlpn01Port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => responder.close(() => resolve())));
  const client = await newClient();
  const [, csr] = await acme.crypto.createCsr({ commonName: 'edge.example.internal', altNames: ['edge.example.internal'] });
  const certificate = await client.auto({
    csr,
    termsOfServiceAgreed: true,
    challengePriority: ['tls-alpn-01'],
    skipChallengeVerification: true,
    challengeCreateFn: async (authz, _challenge, keyAuthorization) => {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
      contexts.set(authz.identifier.value, tls.createSecureContext({ key, cert }));
    },
    challengeRemoveFn: async () => undefined,
  });
  t.ok(dns.queries.includes('A edge.example.internal'), 'the address came from the DNS server');
  const blocks = pemBlocks(certificate);
  const verified = await verifyStrict(dir, blocks[0]!, rootPem);
  t.ok(verified.ok, `openssl verify: ${verified.stdout}${verified.stderr}`);
});
