/**
 * Robustness against hostile input where it enters: mutated CSRs (DER bytes flipped, cut, grown), PEM texts and
 * JSON bodies for issuance, PEM chains for CA import, OCSP requests (POST and GET, many CertIDs, long nonces) and
 * AK/SK-signed requests with mutated signature headers (seeded PRNG, so a failure replays) get 4xx or 2xx, never a
 * 5xx or a crash. Each request's main-thread CPU is measured: none may hold the event loop for 100 ms.
 * FUZZ_SCALE multiplies the count (`npm run fuzz`).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { contextConstructed, DER_NULL, objectIdentifier, octetString, sequence, unsignedInteger } from '../../src/x509/der-writer.ts';
import { CERT_ID_HASH_OIDS, issuerHashes } from '../../src/x509/ocsp.ts';
import { createTestApp } from '../helpers/app.ts';
import { fuzzCases, fuzzer } from '../helpers/fuzz.ts';
import { mainThreadCpuAvailable, mainThreadCpuMs } from '../helpers/main-thread-cpu.ts';
import { ocspRequestDer } from '../x509/support.ts';
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
  opensslCsr(
    dir,
    'fuzz-ec',
    [...KEY_ARGS.p384],
    ['-subj', '/CN=fuzz-ec', '-addext', 'keyUsage=digitalSignature', '-addext', 'extendedKeyUsage=clientAuth'],
  ),
]);
const csrDers = seeds.map(({ csr }) => new Uint8Array(Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64')));

const { random, pick, integer, chance, mutateBytes, jsonJunk, mutateJson: mutateJsonWith } = fuzzer(t, 20240505);

// A PENDING subordinate to import into, with the real chain as the seed of the chain mutations.
const pending = await app.inject({
  method: 'POST',
  url: '/v1/private-certificate-authorities',
  headers: auth,
  payload: {
    type: 'SUBORDINATE',
    key_algorithm: 'EC256',
    signature_algorithm: 'SHA256',
    distinguished_name: {
      common_name: 'fuzz-pending',
      country: 'CN',
      state: 'zj',
      locality: 'hz',
      organization: 'acme',
      organizational_unit: 'mesh',
    },
  },
});
const pendingId = pending.json().ca_id as string;
const chainPem = `${sub.pem}\n${root.pem}\n`;
const HOSTILE_CHAINS = [
  () => '-----BEGIN CERTIFICATE-----\n'.repeat(1 + integer(70_000)),
  () => '-----END CERTIFICATE-----\n'.repeat(1 + integer(10_000)),
  () => `${sub.pem}\n`.repeat(1 + integer(20)),
  () => '-'.repeat(integer(2_000_000)),
  () => `-----BEGIN CERTIFICATE-----\n${'A'.repeat(4 * integer(20_000))}\n-----END CERTIFICATE-----`,
];

// OCSP: a CertID for a serial the sub issued or not, with the sub's SHA-1 issuer hashes.
const subHashes = issuerHashes(sub.der, CERT_ID_HASH_OIDS.SHA1)!;
const certId = (serial: Uint8Array) =>
  sequence(
    sequence(objectIdentifier(CERT_ID_HASH_OIDS.SHA1), DER_NULL),
    octetString(subHashes.nameHash),
    octetString(subHashes.keyHash),
    unsignedInteger(serial),
  );
const ocspSeed = ocspRequestDer([certId(Uint8Array.of(0x12, 0x34))], new Uint8Array(16).fill(0x42));
function ocspPayload(): Uint8Array {
  switch (integer(4)) {
    case 0:
      return ocspRequestDer(Array.from({ length: 1 + integer(40) }, () => certId(Uint8Array.of(integer(256), integer(256)))));
    case 1:
      return ocspRequestDer([certId(Uint8Array.of(1))], new Uint8Array(integer(80)));
    case 2:
      return sequence(sequence(sequence(sequence(certId(Uint8Array.of(1)))), contextConstructed(2, new Uint8Array(integer(40)))));
    default:
      return mutateBytes(ocspSeed);
  }
}

// AK/SK: a correctly signed GET, then its Authorization, date, host or URL mutated.
const keyResponse = await app.inject({ method: 'POST', url: '/v1/access-keys', headers: auth, payload: { description: 'fuzz' } });
const accessKey = keyResponse.json().credential as { access: string; secret: string };
const SIGNED_URL = '/v1/private-certificate-authorities?limit=1';
function signedHeaders(): Record<string, string> {
  const headers: Record<string, string> = { host: 'pca.example.test', 'x-sdk-date': formatSdkDate(new Date()) };
  headers.authorization = signRequest(
    { method: 'GET', url: SIGNED_URL, headers, body: new Uint8Array(0) },
    accessKey.access,
    accessKey.secret,
    ['host', 'x-sdk-date'],
  );
  return headers;
}
const HEADER_JUNK = [
  '',
  ' ',
  ',',
  '=',
  ';',
  'Access=',
  'Signature=',
  'SignedHeaders=',
  'x'.repeat(3000),
  '\u00e9',
  '%00',
  'SDK-HMAC-SHA256',
  '0',
];
function mutateText(text: string): string {
  let out = text;
  for (let edits = 1 + integer(3); edits > 0; edits--) {
    const at = integer(out.length + 1);
    out = chance(0.5) ? out.slice(0, at) + pick(HEADER_JUNK) + out.slice(at) : out.slice(0, at) + out.slice(at + 1 + integer(8));
  }
  // Header values must stay sendable: no control characters.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  return out.replace(/[\u0000-\u001f\u007f]/g, '');
}

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

/** The fuzzer's hostile values, and names this API takes. */
const JUNK: (() => unknown)[] = [...jsonJunk, () => 'ROOT', () => 'SM2', () => 'SHA1', () => 'pca:cn-north-4:x:ca:y'];
const junk = (): unknown => pick(JUNK)();

const mutateJson = (base: Record<string, unknown>) => mutateJsonWith(base, junk);

const validity = { type: 'DAY', value: 10 };
const csrBody = (csr: string) => ({ issuer_id: sub.id, csr, validity, enterprise_project_id: '0' });
const createBody = {
  issuer_id: sub.id,
  distinguished_name: { common_name: 'fuzz', organization: 'acme' },
  validity,
  key_algorithm: 'EC256',
  subject_alternative_names: [
    { type: 'DNS', value: 'a.example.com' },
    { type: 'IP', value: '10.1.2.3' },
  ],
  extended_key_usage: { server_auth: true },
  key_usages: ['digitalSignature'],
  customized_extension: { object_identifier: '1.2.3.4', value: 'v' },
  type: 'ENTITY_CERT',
  enterprise_project_id: '0',
};

type Case = { method?: 'GET' | 'POST'; url: string; payload?: string | Buffer; headers?: Record<string, string> };

function nextCase(i: number): Case {
  const der = pick(csrDers);
  switch (i % 9) {
    case 6: {
      const body = {
        certificate: chance(0.5) ? sub.pem : mutatePem(sub.pem),
        certificate_chain: chance(0.3) ? pick(HOSTILE_CHAINS)() : mutatePem(chainPem),
      };
      return { url: `/v1/private-certificate-authorities/${chance(0.9) ? pendingId : sub.id}/import`, payload: JSON.stringify(body) };
    }
    case 7: {
      const der = Buffer.from(ocspPayload());
      if (chance(0.3)) return { method: 'GET', url: `/ocsp/${sub.id}/${encodeURIComponent(der.toString('base64'))}`, headers: {} };
      return { url: `/ocsp/${sub.id}`, payload: der, headers: { 'content-type': 'application/ocsp-request' } };
    }
    case 8: {
      const headers = signedHeaders();
      const field = pick(['authorization', 'authorization', 'x-sdk-date', 'host', 'url'] as const);
      if (field === 'url')
        return { method: 'GET', url: mutateText(SIGNED_URL).replace(/^[^/]*/, '/'), headers: { ...headers, 'x-domain-id': '' } };
      return { method: 'GET', url: SIGNED_URL, headers: { ...headers, [field]: mutateText(headers[field]) } };
    }
    case 0:
      return { url: '/v1/private-certificates/csr', payload: JSON.stringify(csrBody(toPem('CERTIFICATE REQUEST', mutateBytes(der)))) };
    case 1:
      return {
        url: '/v1/private-certificates/csr/parse',
        payload: JSON.stringify({ csr: toPem('CERTIFICATE REQUEST', mutateBytes(der)) }),
      };
    case 2:
      return {
        url: pick(['/v1/private-certificates/csr', '/v1/private-certificates/csr/parse']),
        payload: JSON.stringify(csrBody(mutatePem(pick(seeds).csr))),
      };
    case 3:
      return {
        url: '/v1/private-certificates/csr',
        payload: JSON.stringify(mutateJson({ ...csrBody(pick(seeds).csr), type: 'INTERMEDIATE_CA', path_length: 1 })),
      };
    case 4:
      return {
        url: '/v1/private-certificates',
        payload: JSON.stringify(mutateJson(createBody)),
        headers: random() < 0.1 ? { 'idempotency-key': 'x'.repeat(integer(80)) } : {},
      };
    default: {
      const text = JSON.stringify(mutateJson(createBody));
      const cut = integer(text.length);
      return {
        url: pick(['/v1/private-certificates', '/v1/private-certificates/csr']),
        payload: text.slice(0, cut) + pick(['', '}', '"', '\\', '\u0000', ']']),
      };
    }
  }
}

const CASES = fuzzCases(4_200);

t.test(
  `${CASES} mutated CSRs, PEM chains, OCSP requests, JSON bodies and signature headers never get a 5xx or hold the loop`,
  async (t) => {
    const statuses = new Map<number, number>();
    const failures: string[] = [];
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const slow: { i: number; cpuMs: number; send: () => Promise<unknown> }[] = [];
    const timed = async <T>(run: () => Promise<T>) => {
      const before = mainThreadCpuAvailable ? mainThreadCpuMs() : 0;
      const result = await run();
      return { result, cpuMs: mainThreadCpuAvailable ? mainThreadCpuMs() - before : 0 };
    };
    for (let i = 0; i < CASES; i++) {
      const { method = 'POST', url, payload, headers = {} } = nextCase(i);
      const baseHeaders =
        i % 9 === 7
          ? {}
          : i % 9 === 8
            ? { 'x-domain-id': harness.config.defaultDomainId }
            : { ...auth, 'content-type': 'application/json' };
      const send = () =>
        app.inject({ method, url, headers: { ...baseHeaders, ...headers }, ...(payload === undefined ? {} : { payload }) });
      const { result: response, cpuMs } = await timed(send);
      if (cpuMs >= 100 && slow.length < 50) slow.push({ i, cpuMs, send });
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const shown = typeof payload === 'string' ? payload.slice(0, 300) : `<${payload?.length ?? 0} bytes>`;
      if (response.statusCode >= 500 && failures.length < 5)
        failures.push(`case ${i} ${method} ${url.slice(0, 100)}: ${response.body.slice(0, 300)} <- ${shown}`);
      if (response.statusCode >= 400) {
        const body = response.json() as { error_code?: string };
        if (!/^(PCA\.\d{8}|APIG\.\d{4})$/.test(body.error_code ?? '') && failures.length < 5)
          failures.push(`case ${i}: no contract error body: ${response.body.slice(0, 300)}`);
      }
    }
    delay.disable();
    t.same(failures, [], 'no 5xx and every refusal has a contract error body');
    const counts = Object.fromEntries(statuses);
    t.ok(
      [...statuses.keys()].every((status) => status < 500),
      `statuses: ${JSON.stringify(counts)}`,
    );
    t.ok((statuses.get(400) ?? 0) > CASES / 3, 'most mutations are refused');
    t.ok((statuses.get(401) ?? 0) > CASES / 30, 'mutated signatures are refused');
    // CPU time of the main thread, not wall time: a loaded machine's preemption does not count against a request.
    // A garbage collection or a first query plan (the in-process test database runs on this thread too) can land in
    // any request, so each request over 100 ms is sent again: an input that is slow by itself is slow twice.
    if (mainThreadCpuAvailable) {
      t.ok(
        slow.length < CASES / 200,
        `${slow.length} of ${CASES} requests took 100 ms of main-thread CPU or more: ${slow.map(({ i, cpuMs }) => `case ${i} ${cpuMs} ms`).join(', ')}`,
      );
      for (const { i, send } of slow) {
        const { cpuMs } = await timed(send);
        t.ok(cpuMs < 100, `case ${i} sent again: ${cpuMs} ms of main-thread CPU`);
      }
    }
    t.comment(
      `event-loop delay over the run (wall time, load included): max ${(delay.max / 1e6).toFixed(0)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms`,
    );
  },
);
