// Fast unit tests of the OCSP codec (src/x509/ocsp.ts): requests assembled by hand (fixed DER), responses built with
// an in-process key and judged by pkijs's parser and node:crypto's verify (no openssl, no server).
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import * as pkijs from 'pkijs';
import t, { type Test } from 'tap';
import { SIGNATURE_OIDS } from '../../src/x509/algorithms.ts';
import { recordingSigner } from './support.ts';
import {
  bitString,
  contextConstructed,
  DER_NULL,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  Tag,
  time,
  tlv,
  utf8String,
} from '../../src/x509/der-writer.ts';
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
  type OcspResponseInput,
} from '../../src/x509/ocsp.ts';
import { Oid } from '../../src/x509/oids.ts';

const hex = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
const bytes = (text: string) => Uint8Array.from(Buffer.from(text, 'hex'));

// ---------------------------------------------------------------------------------------------------------------
// Requests

const sha1Algorithm = sequence(objectIdentifier(CERT_ID_HASH_OIDS.SHA1), DER_NULL);
const nameHash = bytes('11'.repeat(20));
const keyHash = bytes('22'.repeat(20));
const certId = (serial: Uint8Array, algorithm = sha1Algorithm) =>
  sequence(algorithm, octetString(nameHash), octetString(keyHash), tlv(Tag.INTEGER, serial));
const nonceExtensions = (extnValue: Uint8Array, critical = false) =>
  contextConstructed(
    2,
    sequence(
      sequence(objectIdentifier(Oid.ocspNonce), ...(critical ? [tlv(Tag.BOOLEAN, Uint8Array.of(0xff))] : []), octetString(extnValue)),
    ),
  );
const request = (...tbsFields: Uint8Array[]) => sequence(sequence(...tbsFields));
const list = (...ids: Uint8Array[]) => sequence(...ids.map((id) => sequence(id)));

function malformed(der: unknown): string {
  try {
    parseOcspRequest(der as Uint8Array);
    return 'accepted';
  } catch (error) {
    return error instanceof OcspMalformedError ? error.message : `not OcspMalformedError: ${String(error)}`;
  }
}

t.test('a full request: version, requestorName, two CertIDs with an extension, a nonce; CertIDs echoed byte for byte', async (t) => {
  const first = certId(bytes('008a1b'));
  const second = certId(bytes('01'), sequence(objectIdentifier(CERT_ID_HASH_OIDS.SHA256)));
  const singleExtensions = contextConstructed(0, sequence(sequence(objectIdentifier('1.2.3.4'), octetString(Uint8Array.of(5)))));
  const nonce = octetString(bytes('0102030405060708'));
  const der = request(
    contextConstructed(0, smallInteger(0)),
    contextConstructed(1, contextConstructed(4, sequence())),
    sequence(sequence(first, singleExtensions), sequence(second)),
    nonceExtensions(nonce, true),
  );
  const parsed = parseOcspRequest(der);
  t.equal(parsed.requests.length, 2);
  t.same(
    parsed.requests.map((r) => hex(r.certId)),
    [hex(first), hex(second)],
  );
  t.same(
    parsed.requests.map((r) => r.hashAlgorithmOid),
    [CERT_ID_HASH_OIDS.SHA1, CERT_ID_HASH_OIDS.SHA256],
  );
  t.equal(hex(parsed.requests[0].issuerNameHash), hex(nameHash));
  t.equal(hex(parsed.requests[0].issuerKeyHash), hex(keyHash));
  t.same(
    parsed.requests.map((r) => r.serialNumberHex),
    ['8a1b', '01'],
    'serial without its sign octet',
  );
  t.equal(hex(parsed.nonce!), hex(nonce), 'nonce: the extnValue octets, verbatim');
  const plain = parseOcspRequest(request(list(certId(Uint8Array.of(7)))));
  t.equal(plain.nonce, undefined, 'no extensions, no nonce');
  t.equal(
    parseOcspRequest(
      request(
        list(certId(Uint8Array.of(7))),
        contextConstructed(2, sequence(sequence(objectIdentifier('1.2.3'), octetString(Uint8Array.of(1))))),
      ),
    ).nonce,
    undefined,
    'other extensions only',
  );
  t.ok(
    parseOcspRequest(sequence(sequence(list(certId(Uint8Array.of(7)))), contextConstructed(0, sequence()))),
    'an optionalSignature is ignored',
  );
});

t.test('nonce and CertID limits', async (t) => {
  const one = certId(Uint8Array.of(1));
  t.equal(parseOcspRequest(request(list(...Array(MAX_OCSP_CERT_IDS).fill(one)))).requests.length, MAX_OCSP_CERT_IDS);
  t.equal(malformed(request(list(...Array(MAX_OCSP_CERT_IDS + 1).fill(one)))), `more than ${MAX_OCSP_CERT_IDS} CertIDs`);
  const nonceOf = (octets: number) => octetString(new Uint8Array(octets).fill(9));
  t.ok(parseOcspRequest(request(list(one), nonceExtensions(nonceOf(MAX_OCSP_NONCE_OCTETS)))).nonce);
  t.equal(
    malformed(request(list(one), nonceExtensions(nonceOf(MAX_OCSP_NONCE_OCTETS + 1)))),
    `nonce longer than ${MAX_OCSP_NONCE_OCTETS} octets`,
  );
  // A bare nonce (not wrapped in an OCTET STRING) is measured as it is.
  t.ok(parseOcspRequest(request(list(one), nonceExtensions(new Uint8Array(MAX_OCSP_NONCE_OCTETS).fill(1)))).nonce);
  t.equal(
    malformed(request(list(one), nonceExtensions(new Uint8Array(MAX_OCSP_NONCE_OCTETS + 1).fill(1)))),
    `nonce longer than ${MAX_OCSP_NONCE_OCTETS} octets`,
  );
});

t.test('malformed requests fail with OcspMalformedError, whatever the defect', async (t) => {
  const one = certId(Uint8Array.of(1));
  const cases: [string, unknown, RegExp][] = [
    ['not bytes', 'text', /request is not bytes/],
    ['garbage', Uint8Array.of(1, 2, 3), /^malformed OCSP request: /],
    ['trailing bytes', Uint8Array.of(...request(list(one)), 0), /^malformed OCSP request: /],
    ['empty OCSPRequest', sequence(), /bad OCSPRequest/],
    ['signature not [0]', sequence(sequence(list(one)), contextConstructed(1, sequence())), /bad OCSPRequest/],
    ['a third field', sequence(sequence(list(one)), contextConstructed(0, sequence()), sequence()), /bad OCSPRequest/],
    ['version 1', request(contextConstructed(0, smallInteger(1)), list(one)), /unsupported OCSP request version/],
    [
      'version wrapper with two elements',
      request(contextConstructed(0, concatBytes(smallInteger(0), smallInteger(0))), list(one)),
      /an explicit tag must hold one element/,
    ],
    ['no requestList', request(), /no requestList/],
    ['only a version', request(contextConstructed(0, smallInteger(0))), /no requestList/],
    ['empty requestList', request(sequence()), /empty requestList/],
    ['unexpected field', request(list(one), sequence()), /unexpected fields in tbsRequest/],
    [
      'two extension blocks',
      request(list(one), nonceExtensions(octetString(Uint8Array.of(1))), nonceExtensions(octetString(Uint8Array.of(1)))),
      /unexpected fields/,
    ],
    ['empty Request', request(sequence(sequence())), /bad Request/],
    ['Request extensions not [0]', request(sequence(sequence(one, contextConstructed(1, sequence())))), /bad Request/],
    ['Request with three fields', request(sequence(sequence(one, contextConstructed(0, sequence()), sequence()))), /bad Request/],
    [
      'CertID of three fields',
      request(list(sequence(sha1Algorithm, octetString(nameHash), octetString(keyHash)))),
      /CertID needs four fields/,
    ],
    [
      'CertID of five fields',
      request(list(sequence(sha1Algorithm, octetString(nameHash), octetString(keyHash), smallInteger(1), smallInteger(1)))),
      /CertID needs four fields/,
    ],
    ['empty hashAlgorithm', request(list(certId(Uint8Array.of(1), sequence()))), /bad hashAlgorithm/],
    [
      'hashAlgorithm of three',
      request(list(certId(Uint8Array.of(1), sequence(objectIdentifier('1.3.14.3.2.26'), DER_NULL, DER_NULL)))),
      /bad hashAlgorithm/,
    ],
    [
      'nameHash not an OCTET STRING',
      request(list(sequence(sha1Algorithm, smallInteger(1), octetString(keyHash), smallInteger(1)))),
      /^malformed OCSP request/,
    ],
    [
      'Extension of one field',
      request(list(one), contextConstructed(2, sequence(sequence(objectIdentifier(Oid.ocspNonce))))),
      /bad Extension/,
    ],
    [
      'Extension of four fields',
      request(
        list(one),
        contextConstructed(2, sequence(sequence(objectIdentifier(Oid.ocspNonce), DER_NULL, DER_NULL, octetString(Uint8Array.of(1))))),
      ),
      /bad Extension/,
    ],
    [
      'critical flag not a BOOLEAN',
      request(
        list(one),
        contextConstructed(2, sequence(sequence(objectIdentifier(Oid.ocspNonce), DER_NULL, octetString(Uint8Array.of(1))))),
      ),
      /^malformed OCSP request/,
    ],
    [
      'bad Extension in a single request',
      request(sequence(sequence(one, contextConstructed(0, sequence(sequence(objectIdentifier('1.2.3'))))))),
      /bad Extension/,
    ],
  ];
  for (const [name, der, message] of cases) t.match(malformed(der), message, name);
  // A reader failure is wrapped: its message carried, the failure itself kept as the cause.
  const wrapped = (() => {
    try {
      return parseOcspRequest(Uint8Array.of(1, 2, 3));
    } catch (error) {
      return error as OcspMalformedError;
    }
  })() as OcspMalformedError;
  t.ok(wrapped.cause instanceof Error && !(wrapped.cause instanceof OcspMalformedError), 'the reader error is the cause');
  t.equal(wrapped.message, `malformed OCSP request: ${(wrapped.cause as Error).message}`);
});

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

t.test('the GET form: percent-decoded, then base64 in either alphabet, padding optional', async (t) => {
  const der = Uint8Array.of(0x30, 0x03, 0xfb, 0xff, 0xfe);
  const standard = Buffer.from(der).toString('base64'); // MAOA+//+ has '+' and '/'
  t.equal(hex(decodeOcspGetPath(standard)), hex(der));
  t.equal(hex(decodeOcspGetPath(encodeURIComponent(standard))), hex(der), 'percent-encoded');
  t.equal(hex(decodeOcspGetPath(standard.replace(/\+/g, ' '))), hex(der), "'+' turned into ' '");
  t.equal(hex(decodeOcspGetPath(Buffer.from(der).toString('base64url'))), hex(der), 'URL-safe alphabet');
  t.equal(hex(decodeOcspGetPath('MAM=')), '3003', 'padded');
  t.equal(hex(decodeOcspGetPath('MAM')), '3003', 'unpadded');
  t.equal(hex(decodeOcspGetPath('MAM%3D')), '3003', 'percent-encoded padding');
  for (const [segment, message] of [
    ['%E0%A4%A', /bad percent-encoding/],
    ['', /not base64/],
    ['=', /not base64/],
    ['MAMAM', /not base64/],
    ['MA*M', /not base64/],
    ['MA.M', /not base64/],
  ] as const) {
    t.throws(() => decodeOcspGetPath(segment), message, JSON.stringify(segment));
    t.throws(() => decodeOcspGetPath(segment), OcspMalformedError);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Issuer hashes

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = Uint8Array.from(ec.publicKey.export({ format: 'der', type: 'spki' }));
const keyBits = spki.subarray(spki.length - 65);
const subject = sequence(set(sequence(objectIdentifier('2.5.4.3'), utf8String('OCSP Unit CA'))));
const validity = sequence(time(new Date('2026-01-01T00:00:00Z')), time(new Date('2027-01-01T00:00:00Z')));
const caCertificate = (version: boolean) =>
  sequence(
    sequence(
      ...(version ? [contextConstructed(0, smallInteger(2))] : []),
      smallInteger(1),
      sha1Algorithm,
      subject,
      validity,
      subject,
      spki,
    ),
    sha1Algorithm,
    bitString(Uint8Array.of(0)),
  );

t.test('issuerHashes: the digest of the subject Name DER and of the public key bits, per CertID hash', async (t) => {
  for (const [name, oid] of Object.entries(CERT_ID_HASH_OIDS)) {
    const nodeHash = name.toLowerCase();
    for (const version of [true, false]) {
      const hashes = issuerHashes(caCertificate(version), oid)!;
      t.equal(hex(hashes.nameHash), createHash(nodeHash).update(subject).digest('hex'), `${name} name, v${version ? 3 : 1}`);
      t.equal(hex(hashes.keyHash), createHash(nodeHash).update(keyBits).digest('hex'), `${name} key, v${version ? 3 : 1}`);
    }
  }
  t.equal(issuerHashes(caCertificate(true), '1.2.840.113549.2.5'), undefined, 'MD5: not computed');
});

// ---------------------------------------------------------------------------------------------------------------
// Responses

t.test('error responses: OCSPResponse with the status alone', async (t) => {
  const expected = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;
  for (const [status, code] of Object.entries(expected)) {
    t.equal(hex(ocspErrorResponse(status as keyof typeof expected)), `30030a01${code.toString(16).padStart(2, '0')}`, status);
  }
  t.throws(() => ocspErrorResponse('successful' as never), { name: 'RangeError', message: 'not an OCSP error status: successful' });
  t.throws(() => ocspErrorResponse('toString' as never), RangeError);
  t.throws(() => ocspErrorResponse('bogus' as never), { name: 'RangeError', message: 'not an OCSP error status: bogus' });
});

/** The content octets of ResponseData, which begin with the ResponderID (the version, v1, is left out). */
function responseDataContent(tbs: Uint8Array): string {
  return hex(tbs.subarray(tbs[1] < 0x80 ? 2 : 2 + (tbs[1] & 0x7f)));
}

function parseResponse(t: Test, der: Uint8Array) {
  const response = pkijs.OCSPResponse.fromBER(der.slice());
  t.equal(hex(response.toSchema().toBER()), hex(der), 'the OCSPResponse re-encodes to the same DER');
  return { response, basic: pkijs.BasicOCSPResponse.fromBER(response.responseBytes!.response.valueBlock.valueHexView.slice()) };
}

const produced = new Date('2026-03-04T05:06:07.890Z');
const certIdA = certId(bytes('0a'));
const certIdB = certId(bytes('0b'));
const certIdC = certId(bytes('0c'));
const certIdD = certId(bytes('0d'));

t.test('a successful response: byKey responder, each status, dates, nonce echoed, signed over ResponseData', async (t) => {
  const { signer, calls } = recordingSigner(ec.privateKey, 'EC256');
  const nonce = octetString(bytes('aabbccdd'));
  const input: OcspResponseInput = {
    responderKeyHash: keyHash,
    producedAt: produced,
    responses: [
      { certId: certIdA, status: 'good', thisUpdate: produced, nextUpdate: new Date('2026-03-05T05:06:07Z') },
      { certId: certIdB, status: { revoked: { time: new Date('2026-02-01T00:00:00Z'), reasonCode: 1 } }, thisUpdate: produced },
      { certId: certIdC, status: { revoked: { time: new Date('2026-02-02T00:00:00Z'), reasonCode: 0 } }, thisUpdate: produced },
      { certId: certIdD, status: 'unknown', thisUpdate: produced },
    ],
    nonce,
    hash: 'SHA256',
  };
  const der = await buildOcspResponse(input, signer);
  const { response, basic } = parseResponse(t, der);
  t.equal(response.responseStatus.valueBlock.valueDec, 0, 'successful');
  t.equal(response.responseBytes!.responseType, Oid.ocspBasic);
  const data = basic.tbsResponseData;
  t.ok(
    responseDataContent(data.tbsView).startsWith(`a216${'0414'}${hex(keyHash)}180f`),
    'no version (v1 is the DEFAULT), byKey [2] responder, producedAt',
  );
  t.equal(
    hex(basic.toSchema().toBER()).includes('180f32303236303330343035303630375a'),
    true,
    'producedAt: GeneralizedTime 20260304050607Z',
  );
  t.equal(data.producedAt.toISOString(), '2026-03-04T05:06:07.000Z');

  const single = data.responses;
  t.same(
    single.map((s) => hex(s.certID.toSchema().toBER())),
    [certIdA, certIdB, certIdC, certIdD].map(hex),
    'CertIDs echoed',
  );
  t.same(
    single.map((s) => hex(s.certStatus.valueBeforeDecodeView)),
    ['8000', `a116${'180f32303236303230313030303030305a'}${'a003'}0a0101`, 'a111180f32303236303230323030303030305a', '8200'],
    'good [0] NULL, revoked [1] time + reason (none for unspecified), unknown [2] NULL',
  );
  t.same(
    single.map((s) => s.thisUpdate.toISOString()),
    Array(4).fill('2026-03-04T05:06:07.000Z'),
  );
  t.equal(single[0].nextUpdate!.toISOString(), '2026-03-05T05:06:07.000Z');
  t.same(
    single.slice(1).map((s) => s.nextUpdate),
    [undefined, undefined, undefined],
    'nextUpdate only when given',
  );

  t.same(
    data.responseExtensions!.map((e) => [e.extnID, e.critical, hex(e.extnValue.valueBlock.valueHexView)]),
    [[Oid.ocspNonce, false, hex(nonce)]],
  );
  t.equal(basic.signatureAlgorithm.algorithmId, SIGNATURE_OIDS.EC.SHA256);
  t.equal(basic.certs, undefined, 'no certs unless given');
  t.equal(calls.length, 1);
  t.equal(hex(calls[0].data), hex(data.tbsView), 'the signer saw ResponseData and nothing else');
  t.ok(verify('sha256', data.tbsView, ec.publicKey, basic.signature.valueBlock.valueHexView), 'the signature verifies');
});

t.test('byName responder, no nonce, SHA-384, a signer certificate in certs', async (t) => {
  const { signer } = recordingSigner(ec.privateKey, 'EC256');
  const certificate = caCertificate(true);
  const der = await buildOcspResponse(
    {
      responderName: subject,
      producedAt: produced,
      responses: [{ certId: certIdA, status: 'good', thisUpdate: produced }],
      hash: 'SHA384',
      signerCertificates: [certificate],
    },
    signer,
  );
  const { basic } = parseResponse(t, der);
  t.ok(responseDataContent(basic.tbsResponseData.tbsView).startsWith(`${hex(contextConstructed(1, subject))}180f`), 'byName [1] responder');
  t.equal(basic.tbsResponseData.responseExtensions, undefined, 'no nonce, no extensions');
  t.equal(basic.signatureAlgorithm.algorithmId, SIGNATURE_OIDS.EC.SHA384);
  t.equal(basic.certs?.length, 1);
  t.equal(hex((basic.certs![0] as pkijs.Certificate).toSchema().toBER()), hex(certificate));
  t.ok(verify('sha384', basic.tbsResponseData.tbsView, ec.publicKey, basic.signature.valueBlock.valueHexView));
  const empty = parseResponse(
    t,
    await buildOcspResponse(
      {
        responderKeyHash: keyHash,
        producedAt: produced,
        responses: [{ certId: certIdA, status: 'good', thisUpdate: produced }],
        hash: 'SHA256',
        signerCertificates: [],
      },
      signer,
    ),
  );
  t.equal(empty.basic.certs, undefined, 'an empty certificate list is left out');
});

t.test('inputs buildOcspResponse refuses', async (t) => {
  const { signer } = recordingSigner(ec.privateKey, 'EC256');
  const base = { responderKeyHash: keyHash, producedAt: produced, hash: 'SHA256' as const };
  const revoked = (reasonCode: number) => ({ certId: certIdA, status: { revoked: { time: produced, reasonCode } }, thisUpdate: produced });
  for (const reasonCode of [7, 8, 11, -1]) {
    await t.rejects(buildOcspResponse({ ...base, responses: [revoked(reasonCode)] }, signer), {
      name: 'RangeError',
      message: `bad reason code ${reasonCode}`,
    });
  }
  for (const reasonCode of [0, 1, 2, 3, 4, 5, 6, 9, 10])
    t.ok(await buildOcspResponse({ ...base, responses: [revoked(reasonCode)] }, signer), `reason ${reasonCode}`);
  await t.rejects(
    buildOcspResponse({ ...base, responses: [{ certId: octetString(Uint8Array.of(1)), status: 'good', thisUpdate: produced }] }, signer),
    { message: 'certId is not a DER SEQUENCE' },
  );
  await t.rejects(buildOcspResponse({ producedAt: produced, hash: 'SHA256', responderName: utf8String('x'), responses: [] }, signer), {
    message: 'responderName is not a DER SEQUENCE',
  });
  await t.rejects(buildOcspResponse({ ...base, responses: [], signerCertificates: [Uint8Array.of(5, 0)] }, signer), {
    message: 'signer certificate is not a DER SEQUENCE',
  });
});
