import t from 'tap';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CERT_ID_HASH_OIDS,
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_NONCE_OCTETS,
  OcspMalformedError,
  buildOcspResponse,
  decodeOcspGetPath,
  issuerHashes,
  ocspErrorResponse,
  parseOcspRequest,
  type OcspRequest,
  type OcspResponseInput,
} from '../../src/x509/ocsp.ts';
import { createOpensslPki, openssl, opensslDate, runOpenssl } from './fixtures/openssl-pki.ts';
import { ocspRequestDer } from './support.ts';
import { fuzzCases, fuzzer } from '../helpers/fuzz.ts';

const pki = await createOpensslPki('EC256');
t.teardown(() => rm(pki.dir, { recursive: true, force: true }));
const [leaf1, leaf2] = pki.leaves;
const HOUR = 3_600_000;
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const REVOKED_AT = new Date(NOW.getTime() - 5 * HOUR);

/** `openssl ocsp ... -reqout name.der` for both leaves, with options (a digest must precede -cert). */
async function opensslRequest(name: string, ...options: string[]): Promise<Uint8Array> {
  await openssl(['ocsp', '-issuer', 'ca.pem', ...options, '-cert', leaf1.path, '-cert', leaf2.path, '-reqout', `${name}.der`], pki.dir);
  return new Uint8Array(await readFile(join(pki.dir, `${name}.der`)));
}

const [withNonce, withoutNonce, sha256CertIds] = await Promise.all([
  opensslRequest('req-nonce'),
  opensslRequest('req-no-nonce', '-no_nonce'),
  opensslRequest('req-sha256', '-no_nonce', '-sha256'),
]);

const responderKeyHash = issuerHashes(pki.caDer, CERT_ID_HASH_OIDS.SHA1)!.keyHash;

/** A response to `request`: leaf1 revoked for keyCompromise, leaf2 good, nonce echoed. */
function responseTo(request: OcspRequest, overrides: Partial<OcspResponseInput> = {}): OcspResponseInput {
  const bySerial = new Map(request.requests.map((r) => [r.serialNumberHex, r.certId]));
  return {
    responderKeyHash,
    producedAt: NOW,
    responses: [
      {
        certId: bySerial.get(leaf1.serialHex)!,
        status: { revoked: { time: REVOKED_AT, reasonCode: 1 } },
        thisUpdate: NOW,
        nextUpdate: new Date(NOW.getTime() + HOUR),
      },
      { certId: bySerial.get(leaf2.serialHex)!, status: 'good', thisUpdate: NOW },
    ],
    nonce: request.nonce,
    hash: 'SHA256',
    ...overrides,
  };
}

/** Writes the response and asks openssl to verify it against the CA and print it. */
async function opensslCheck(name: string, response: Uint8Array, ...options: string[]) {
  await writeFile(join(pki.dir, `${name}.der`), response);
  return runOpenssl(['ocsp', '-respin', `${name}.der`, '-issuer', 'ca.pem', '-CAfile', 'ca.pem', ...options], pki.dir);
}

t.test('parses openssl requests: SHA-1 CertIDs with a nonce, without, and SHA-256 CertIDs', async (t) => {
  const sha1 = issuerHashes(pki.caDer, CERT_ID_HASH_OIDS.SHA1)!;
  const sha256 = issuerHashes(pki.caDer, CERT_ID_HASH_OIDS.SHA256)!;
  const textOf = await openssl(['ocsp', '-reqin', 'req-nonce.der', '-req_text'], pki.dir);

  const parsed = parseOcspRequest(withNonce);
  t.same(
    parsed.requests.map((r) => r.serialNumberHex),
    [leaf1.serialHex, leaf2.serialHex],
  );
  for (const request of parsed.requests) {
    t.equal(request.hashAlgorithmOid, CERT_ID_HASH_OIDS.SHA1);
    t.same(request.issuerNameHash, sha1.nameHash);
    t.same(request.issuerKeyHash, sha1.keyHash);
    t.equal(request.certId[0], 0x30);
  }
  t.match(textOf, `Issuer Name Hash: ${hex(sha1.nameHash).toUpperCase()}`);
  t.match(textOf, `Issuer Key Hash: ${hex(sha1.keyHash).toUpperCase()}`);
  t.equal(parsed.nonce?.length, 18, 'an OCTET STRING of 16 random bytes');
  t.match(textOf.replace(/\s/g, ''), hex(parsed.nonce!).toUpperCase());

  t.equal(parseOcspRequest(withoutNonce).nonce, undefined);

  const bySha256 = parseOcspRequest(sha256CertIds);
  t.same(
    bySha256.requests.map((r) => r.hashAlgorithmOid),
    [CERT_ID_HASH_OIDS.SHA256, CERT_ID_HASH_OIDS.SHA256],
  );
  t.same(bySha256.requests[0].issuerNameHash, sha256.nameHash);
  t.same(bySha256.requests[0].issuerKeyHash, sha256.keyHash);
  t.equal(issuerHashes(pki.caDer, '1.2.840.113549.2.5'), undefined, 'MD5 CertIDs are not matched');
});

t.test('a signed response verifies with openssl and reports revoked and good, nonce echoed', async (t) => {
  const request = parseOcspRequest(withNonce);
  const response = await buildOcspResponse(responseTo(request), pki.caSigner);

  // Against the original request: openssl checks the nonce and prints the response.
  const judged = await opensslCheck('resp-nonce', response, '-reqin', 'req-nonce.der', '-resp_text');
  t.equal(judged.code, 0, judged.output);
  t.match(judged.output, /Response verify OK/);
  t.notMatch(judged.output, /Nonce Verify error|WARNING: no nonce/);
  t.match(judged.output, /OCSP Response Status: successful \(0x0\)/);
  t.match(judged.output, `Responder Id: ${hex(responderKeyHash).toUpperCase()}`);
  t.match(judged.output, /Cert Status: revoked\n\s+Revocation Time: .*\n\s+Revocation Reason: keyCompromise \(0x1\)/);
  t.match(judged.output, /Cert Status: good/);
  t.match(judged.output.replace(/\s/g, ''), `OCSPNonce:${hex(request.nonce!).toUpperCase()}`);

  // Per certificate, as a relying party asks.
  const perCert = await opensslCheck('resp-nonce', response, '-no_nonce', '-cert', leaf1.path, '-cert', leaf2.path);
  t.match(perCert.output, new RegExp(`leaf1.pem: revoked[^]*Reason: keyCompromise\\n\\s+Revocation Time: ${opensslDate(REVOKED_AT)}`));
  t.match(perCert.output, /leaf2.pem: good/);

  // A response carrying another nonce is caught, so the echo above is what made it pass.
  const otherNonce = Uint8Array.from([4, 2, 1, 2]);
  const forged = await buildOcspResponse(responseTo(request, { nonce: otherNonce }), pki.caSigner);
  t.match((await opensslCheck('resp-forged', forged, '-reqin', 'req-nonce.der')).output, /Nonce Verify error/);
});

t.test('unknown, revoked without reason, SHA-256 CertIDs, responder by name, signed with SHA-384', async (t) => {
  const request = parseOcspRequest(sha256CertIds);
  const [first, second] = request.requests;
  const response = await buildOcspResponse(
    {
      responderName: pki.caSubjectDer,
      producedAt: NOW,
      responses: [
        { certId: first.certId, status: 'unknown', thisUpdate: NOW },
        { certId: second.certId, status: { revoked: { time: REVOKED_AT, reasonCode: 0 } }, thisUpdate: NOW },
      ],
      hash: 'SHA384',
    },
    pki.caSigner,
  );
  const judged = await opensslCheck(
    'resp-sha256',
    response,
    '-sha256',
    '-no_nonce',
    '-cert',
    leaf1.path,
    '-cert',
    leaf2.path,
    '-resp_text',
  );
  t.equal(judged.code, 0, judged.output);
  t.match(judged.output, /Response verify OK/);
  t.match(judged.output, /Responder Id: C = CN, O = Test Org, CN = Test Root CA/);
  t.match(judged.output, /Signature Algorithm: ecdsa-with-SHA384/);
  t.match(judged.output, /leaf1.pem: unknown/);
  t.match(judged.output, /leaf2.pem: revoked\n\s+This Update: .*\n\s+Revocation Time:/);
  t.notMatch(judged.output, /Revocation Reason/);
});

t.test('signer certificates travel in certs', async (t) => {
  const response = await buildOcspResponse(responseTo(parseOcspRequest(withoutNonce), { signerCertificates: [pki.caDer] }), pki.caSigner);
  const judged = await opensslCheck('resp-certs', response, '-no_nonce', '-resp_text');
  t.equal(judged.code, 0, judged.output);
  t.match(judged.output, /Certificate:\n\s+Data:[\s\S]*Subject: C=CN, O=Test Org, CN=Test Root CA/);
});

t.test('bounds: at most 10 CertIDs, and a nonce of at most 32 octets (RFC 8954)', async (t) => {
  const certId = parseOcspRequest(withoutNonce).requests[0].certId;
  t.equal(MAX_OCSP_CERT_IDS, 10);
  t.equal(parseOcspRequest(ocspRequestDer(Array(10).fill(certId))).requests.length, 10);
  t.throws(() => parseOcspRequest(ocspRequestDer(Array(11).fill(certId))), { name: 'OcspMalformedError', message: /more than 10 CertIDs/ });
  t.throws(() => parseOcspRequest(ocspRequestDer(Array(860).fill(certId))), OcspMalformedError, 'a 64 KB request of 860 CertIDs');

  t.equal(MAX_OCSP_NONCE_OCTETS, 32);
  for (const length of [1, 16, 32])
    t.equal(
      parseOcspRequest(ocspRequestDer([certId], new Uint8Array(length).fill(7))).nonce?.length,
      length + 2,
      `${length} octets echoed`,
    );
  for (const length of [33, 64, 60_000]) {
    t.throws(
      () => parseOcspRequest(ocspRequestDer([certId], new Uint8Array(length).fill(7))),
      { name: 'OcspMalformedError', message: /nonce longer than 32/ },
      `${length} octets`,
    );
  }
});

t.test('error responses', async (t) => {
  for (const [status, text] of [
    ['malformedRequest', 'malformedrequest (1)'],
    ['internalError', 'internalerror (2)'],
    ['tryLater', 'trylater (3)'],
    ['unauthorized', 'unauthorized (6)'],
  ] as const) {
    await writeFile(join(pki.dir, `${status}.der`), ocspErrorResponse(status));
    const output = (await runOpenssl(['ocsp', '-respin', `${status}.der`, '-resp_text'], pki.dir)).output;
    t.match(output, `Responder Error: ${text}`, status);
  }
  t.same([...ocspErrorResponse('malformedRequest')], [0x30, 0x03, 0x0a, 0x01, 0x01]);
});

t.test('GET form: URL-encoded base64, with or without padding, URL-safe alphabet tolerated', async (t) => {
  const base64 = Buffer.from(withNonce).toString('base64');
  const urlSafe = Buffer.from(withNonce).toString('base64url');
  for (const segment of [encodeURIComponent(base64), base64.replace(/=+$/, ''), urlSafe, encodeURIComponent(base64).replace(/%2B/g, '+')]) {
    t.same(decodeOcspGetPath(segment), withNonce, segment.slice(0, 30));
  }
  for (const bad of ['', '%E0%A4%A', 'AAAAA', 'abc$def', '====']) {
    t.throws(() => decodeOcspGetPath(bad), OcspMalformedError, JSON.stringify(bad));
  }
});

t.test('garbage and mutations (2,000 × FUZZ_SCALE) never raise anything but OcspMalformedError', async (t) => {
  const { integer: random } = fuzzer(t, 0x2545f491);
  const garbage = [new Uint8Array(0), Uint8Array.of(0x30), Uint8Array.of(0x30, 0x80, 0, 0), pki.caDer];
  const mutants = garbage.map((bytes) => ({ kind: 'garbage', bytes }));
  const originals = [withNonce, withoutNonce, sha256CertIds];
  while (mutants.length < fuzzCases(2000)) {
    const bytes = originals[random(originals.length)].slice();
    switch (random(4)) {
      case 0:
        for (let i = 1 + random(3); i > 0; i--) bytes[random(bytes.length)] ^= 1 << random(8);
        mutants.push({ kind: 'bit flips', bytes });
        break;
      case 1:
        mutants.push({ kind: 'truncated', bytes: bytes.subarray(0, random(bytes.length)) });
        break;
      case 2: // a boundary value where a length or tag may sit
        bytes[random(bytes.length)] = [0x00, 0x7f, 0x80, 0x81, 0x84, 0xff][random(6)];
        mutants.push({ kind: 'boundary byte', bytes });
        break;
      default:
        mutants.push({ kind: 'garbage', bytes: Uint8Array.from({ length: random(120) }, () => random(256)) });
    }
  }
  const accepted = new Map<string, number>();
  for (const { kind, bytes } of mutants) {
    try {
      parseOcspRequest(bytes);
      accepted.set(kind, (accepted.get(kind) ?? 0) + 1);
    } catch (error) {
      if (!(error instanceof OcspMalformedError)) t.fail(`${(error as Error).name}: ${(error as Error).message} for ${hex(bytes)}`);
    }
  }
  // Flips inside hashes, serials or the nonce leave a well-formed request; cut or random bytes never do.
  t.equal(accepted.get('truncated'), undefined);
  t.equal(accepted.get('garbage'), undefined);
  t.throws(() => parseOcspRequest('not bytes' as unknown as Uint8Array), OcspMalformedError);
});

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}
