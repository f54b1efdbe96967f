/**
 * Robustness of the issuance endpoints: over 10,000 mutated CSRs (DER bytes flipped, cut, grown), PEM texts and
 * JSON bodies (seeded PRNG, so a failure replays) get 4xx or 200, never a 5xx or a crash.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { fuzzer } from '../helpers/fuzz.ts';
import { toPem } from '../../src/x509/pem.ts';
import { KEY_ARGS, opensslCsr, scratch, seedCa } from './support.ts';

// The mutation loop exceeds the per-credential rate limit on purpose of volume, not of abuse.
const harness = await createTestApp({ env: { RATE_LIMIT_MAX: '1000000' } });
t.teardown(() => harness.close());
const { app } = harness;
const auth = harness.auth();
const dir = await scratch('fuzz');
const root = await seedCa(harness, { commonName: 'fuzz-root' });
const sub = await seedCa(harness, { commonName: 'fuzz-sub', parent: root, pathLength: 2 });
const seeds = await Promise.all([
  opensslCsr(dir, 'fuzz-rsa', [...KEY_ARGS.rsa2048], ['-subj', '/CN=fuzz/O=acme', '-addext', 'subjectAltName=DNS:fuzz.example.com,IP:::1']),
  opensslCsr(dir, 'fuzz-ec', [...KEY_ARGS.p384], ['-subj', '/CN=fuzz-ec', '-addext', 'keyUsage=digitalSignature', '-addext', 'extendedKeyUsage=clientAuth']),
]);
const csrDers = seeds.map(({ csr }) => new Uint8Array(Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64')));

const { random, pick, integer, mutateBytes } = fuzzer(20240505);

function mutatePem(pem: string): string {
  const chars = [...pem];
  switch (integer(5)) {
    case 0:
      chars[integer(chars.length)] = pick(['-', '=', ' ', '\n', 'A', '*', '\u00e9', '\u0000']);
      return chars.join('');
    case 1:
      return pem.replace('CERTIFICATE REQUEST', pick(['CERTIFICATE', 'PRIVATE KEY', 'X509 CRL', 'NEW CERTIFICATE REQUEST']));
    case 2:
      return `${pem}\n${pem}`;
    case 3:
      return pem.slice(0, integer(pem.length));
    default:
      return pem.replace(/\n/g, pick(['\r\n', '', '\r', '  ']));
  }
}

const JUNK: unknown[] = [null, true, 0, -1, 1.5, 2 ** 53, '', 'x'.repeat(5000), [], {}, [{}], { a: 1 }, 'ROOT', 'SM2', 'SHA1', '\u0000', 'pca:cn-north-4:x:ca:y'];

/** A fresh copy: a shared junk object written into itself would make the body circular. */
const junk = (): unknown => structuredClone(pick(JUNK));

function mutateJson(base: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = structuredClone(base);
  for (let i = 0, n = 1 + integer(3); i < n; i++) {
    const keys = Object.keys(body);
    const key = pick(keys);
    const inner = body[key];
    if (inner && typeof inner === 'object' && !Array.isArray(inner) && random() < 0.5) {
      const innerKeys = Object.keys(inner);
      if (innerKeys.length > 0) (inner as Record<string, unknown>)[pick(innerKeys)] = junk();
    } else if (random() < 0.2) {
      delete body[key];
    } else {
      body[key] = junk();
    }
  }
  return body;
}

const validity = { type: 'DAY', value: 10 };
const csrBody = (csr: string) => ({ issuer_id: sub.id, csr, validity, enterprise_project_id: '0' });
const createBody = {
  issuer_id: sub.id,
  distinguished_name: { common_name: 'fuzz', organization: 'acme' },
  validity,
  key_algorithm: 'EC256',
  subject_alternative_names: [{ type: 'DNS', value: 'a.example.com' }, { type: 'IP', value: '10.1.2.3' }],
  extended_key_usage: { server_auth: true },
  key_usages: ['digitalSignature'],
  customized_extension: { object_identifier: '1.2.3.4', value: 'v' },
  type: 'ENTITY_CERT',
  enterprise_project_id: '0',
};

type Case = { url: string; payload: string; headers?: Record<string, string> };

function nextCase(i: number): Case {
  const der = pick(csrDers);
  switch (i % 6) {
    case 0:
      return { url: '/v1/private-certificates/csr', payload: JSON.stringify(csrBody(toPem('CERTIFICATE REQUEST', mutateBytes(der)))) };
    case 1:
      return { url: '/v1/private-certificates/csr/parse', payload: JSON.stringify({ csr: toPem('CERTIFICATE REQUEST', mutateBytes(der)) }) };
    case 2:
      return { url: pick(['/v1/private-certificates/csr', '/v1/private-certificates/csr/parse']), payload: JSON.stringify(csrBody(mutatePem(pick(seeds).csr))) };
    case 3:
      return { url: '/v1/private-certificates/csr', payload: JSON.stringify(mutateJson({ ...csrBody(pick(seeds).csr), type: 'INTERMEDIATE_CA', path_length: 1 })) };
    case 4:
      return { url: '/v1/private-certificates', payload: JSON.stringify(mutateJson(createBody)), headers: random() < 0.1 ? { 'idempotency-key': 'x'.repeat(integer(80)) } : {} };
    default: {
      const text = JSON.stringify(mutateJson(createBody));
      const cut = integer(text.length);
      return { url: pick(['/v1/private-certificates', '/v1/private-certificates/csr']), payload: text.slice(0, cut) + pick(['', '}', '"', '\\', '\u0000', ']']) };
    }
  }
}

t.test('10,200 mutated CSRs, PEM texts and JSON bodies never get a 5xx', async (t) => {
  const statuses = new Map<number, number>();
  const failures: string[] = [];
  for (let i = 0; i < 10_200; i++) {
    const { url, payload, headers = {} } = nextCase(i);
    const response = await app.inject({ method: 'POST', url, headers: { ...auth, 'content-type': 'application/json', ...headers }, payload });
    statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
    if (response.statusCode >= 500 && failures.length < 5) failures.push(`case ${i} ${url}: ${response.body} <- ${payload.slice(0, 300)}`);
    if (response.statusCode >= 400) {
      const body = response.json() as { error_code?: string };
      if (!/^PCA\.\d{8}$/.test(body.error_code ?? '') && failures.length < 5) failures.push(`case ${i}: no contract error body: ${response.body}`);
    }
  }
  t.same(failures, [], 'no 5xx and every refusal has a contract error body');
  const counts = Object.fromEntries(statuses);
  t.ok([...statuses.keys()].every((status) => status === 200 || (status >= 400 && status < 500)), `statuses: ${JSON.stringify(counts)}`);
  t.ok((statuses.get(400) ?? 0) > 5000, 'most mutations are refused');
});
