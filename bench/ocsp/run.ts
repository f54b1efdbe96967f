/**
 * OCSP responses per second: parse an openssl-made request, build the response, sign it (P-256 and RSA-2048 CA
 * keys through the WebCrypto Signer of the tests), one at a time and 32 in flight; plus the codec alone (a signer
 * that returns a fixed signature). The certificate status lookup (database) is not part of this measurement.
 * Run: npx tsx bench/ocsp/run.ts [seconds per case]
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Signer } from '../../src/x509/algorithms.ts';
import { buildOcspResponse, CERT_ID_HASH_OIDS, issuerHashes, parseOcspRequest } from '../../src/x509/ocsp.ts';
import { createOpensslPki, openssl, type PkiKeyAlgorithm } from '../../test/x509/fixtures/openssl-pki.ts';

const seconds = Number(process.argv[2] ?? 3);

/** Answers `request` as the responder would: every CertID good, nonce echoed. */
async function respond(request: Uint8Array, responderKeyHash: Uint8Array, signer: Signer): Promise<Uint8Array> {
  const parsed = parseOcspRequest(request);
  const now = new Date();
  return buildOcspResponse(
    {
      responderKeyHash,
      producedAt: now,
      responses: parsed.requests.map((r) => ({ certId: r.certId, status: 'good' as const, thisUpdate: now })),
      nonce: parsed.nonce,
      hash: 'SHA256',
    },
    signer,
  );
}

/** Responses per second over `seconds`, with `inFlight` concurrent callers. */
async function rate(inFlight: number, once: () => Promise<unknown>): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      await once();
      done++;
    }
  };
  const began = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return done / ((performance.now() - began) / 1000);
}

const format = (perSecond: number) => `${Math.round(perSecond).toLocaleString('en')}/s`.padStart(10);

for (const keyAlgorithm of ['EC256', 'RSA2048'] as PkiKeyAlgorithm[]) {
  const pki = await createOpensslPki(keyAlgorithm);
  await openssl(['ocsp', '-issuer', 'ca.pem', '-cert', pki.leaves[0].path, '-reqout', 'req.der'], pki.dir);
  const request = new Uint8Array(await readFile(join(pki.dir, 'req.der')));
  const responderKeyHash = issuerHashes(pki.caDer, CERT_ID_HASH_OIDS.SHA1)!.keyHash;

  const sample = await respond(request, responderKeyHash, pki.caSigner);
  await writeFile(join(pki.dir, 'resp.der'), sample);
  const verdict = await openssl(['ocsp', '-respin', 'resp.der', '-reqin', 'req.der', '-issuer', 'ca.pem', '-CAfile', 'ca.pem'], pki.dir);

  await rm(pki.dir, { recursive: true, force: true });

  const fixedSignature = new Uint8Array(await pki.caSigner.sign('SHA256', new Uint8Array(1)));
  const codecOnly: Signer = { keyAlgorithm, sign: async () => fixedSignature };
  const codec = await rate(1, () => respond(request, responderKeyHash, codecOnly));
  const sequential = await rate(1, () => respond(request, responderKeyHash, pki.caSigner));
  const concurrent = await rate(32, () => respond(request, responderKeyHash, pki.caSigner));

  console.log(
    `${keyAlgorithm.padEnd(8)} codec only ${format(codec)}   parse+build+sign: 1 in flight ${format(sequential)}, 32 in flight ${format(concurrent)}   (${sample.length} B, openssl: ${verdict.trim()})`,
  );
}
