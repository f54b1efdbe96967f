/**
 * Why pkijs and @peculiar/webcrypto, both named by the product design, are not on the issuing path: the same
 * work done three ways in one run. Each row is operations per second over BENCH_SECONDS (default 1.5 s), one at a
 * time, P-256 / SHA-256:
 * - parse a CSR and verify its proof of possession: our reader (src/x509/csr.ts) against pkijs over Node's
 *   WebCrypto and pkijs over @peculiar/webcrypto;
 * - build and sign a leaf certificate (subject, SAN, key usages, AKI/SKI, CRL DP, AIA): our writer
 *   (src/x509/certificate.ts) against pkijs objects signed through each engine;
 * - the bare ECDSA signature through Node's WebCrypto and @peculiar/webcrypto, the floor under both.
 * Prints a Markdown table with the ratio of each to ours; record runs in RESULTS.md.
 */
import os from 'node:os';
import { Crypto as PeculiarCrypto } from '@peculiar/webcrypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { buildCertificate, randomSerial, verifyCertificateSignature } from '../../src/x509/certificate.ts';
import { buildCsr, parseCsr } from '../../src/x509/csr.ts';
import { encodeName } from '../../src/x509/name.ts';
import { subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { generateTestKey } from '../../test/x509/support.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function rate(operation: () => unknown): Promise<number> {
  for (let i = 0; i < 50; i++) await operation(); // warm-up: JIT and the engines' lazy set-up
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  while (performance.now() < end) {
    await operation();
    done++;
  }
  return done / SECONDS;
}

const ca = await generateTestKey('EC256');
const leaf = await generateTestKey('EC256');
const subject = { common_name: 'bench.internal', organization: 'bench', country: 'CN' };
const csrDer = await buildCsr(subject, leaf.spki, leaf.signer, 'SHA256');
const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(csrDer).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
const issuerName = encodeName({ common_name: 'Bench CA', organization: 'bench', country: 'CN' });
const caSki = await subjectKeyIdentifier(ca.spki);
const CRL_URL = 'http://pca.bench.internal/crl/ca.crl';
const OCSP_URL = 'http://pca.bench.internal/ocsp';

const ours = {
  parse: () => parseCsr(csrPem),
  issue: () => {
    const now = new Date();
    return buildCertificate(
      {
        serialNumber: randomSerial(),
        subject,
        issuer: issuerName,
        notBefore: now,
        notAfter: new Date(now.getTime() + 30 * 86_400_000),
        spki: leaf.spki,
        hash: 'SHA256',
        basicConstraints: { ca: false },
        keyUsages: ['digitalSignature', 'keyEncipherment'],
        extendedKeyUsages: ['1.3.6.1.5.5.7.3.1'],
        subjectAltNames: [{ type: 'DNS', value: 'bench.internal' }],
        authorityKeyIdentifier: caSki,
        crlDistributionPoint: CRL_URL,
        ocspUrl: OCSP_URL,
      },
      ca.signer,
    );
  },
};

/** pkijs doing the same work through one WebCrypto implementation. */
async function viaPkijs(crypto: Crypto) {
  const engine = new pkijs.CryptoEngine({ name: 'bench', crypto });
  const caKey = await crypto.subtle.importKey('pkcs8', pemBody(ca.privateKeyPem), ECDSA, false, ['sign']);
  const leafSpki = pkijs.PublicKeyInfo.fromBER(leaf.spki.slice());
  const issuer = pkijs.RelativeDistinguishedNames.fromBER(issuerName.slice());
  const subjectRdn = pkijs.RelativeDistinguishedNames.fromBER(encodeName(subject).slice());
  const extension = (extnID: string, value: { toBER(): ArrayBuffer }, critical = false) =>
    new pkijs.Extension({ extnID, critical, extnValue: value.toBER() });
  const uri = (value: string) => new pkijs.GeneralName({ type: 6, value });
  return {
    parse: async () => {
      const request = pkijs.CertificationRequest.fromBER(csrDer.slice());
      if (!(await request.verify(engine))) throw new Error('CSR signature refused');
      return request;
    },
    issue: async () => {
      const now = new Date(Math.floor(Date.now() / 1000) * 1000);
      const serial = randomSerial();
      const leafSki = await engine.digest({ name: 'SHA-1' }, leafSpki.subjectPublicKey.valueBlock.valueHexView.slice());
      const certificate = new pkijs.Certificate({
        version: 2,
        serialNumber: new asn1js.Integer({ valueHex: serial.buffer as ArrayBuffer }),
        issuer,
        subject: subjectRdn,
        notBefore: new pkijs.Time({ type: 0, value: now }),
        notAfter: new pkijs.Time({ type: 0, value: new Date(now.getTime() + 30 * 86_400_000) }),
        subjectPublicKeyInfo: leafSpki,
        extensions: [
          extension('2.5.29.19', new pkijs.BasicConstraints({ cA: false }).toSchema(), true),
          extension('2.5.29.15', new asn1js.BitString({ valueHex: new Uint8Array([0xa0]).buffer, unusedBits: 5 }), true),
          extension('2.5.29.37', new pkijs.ExtKeyUsage({ keyPurposes: ['1.3.6.1.5.5.7.3.1'] }).toSchema()),
          extension('2.5.29.17', new pkijs.AltName({ altNames: [new pkijs.GeneralName({ type: 2, value: 'bench.internal' })] }).toSchema()),
          extension(
            '2.5.29.35',
            new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: caSki.slice().buffer }) }).toSchema(),
          ),
          extension('2.5.29.14', new asn1js.OctetString({ valueHex: leafSki })),
          extension(
            '2.5.29.31',
            new pkijs.CRLDistributionPoints({
              distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: [uri(CRL_URL)] })],
            }).toSchema(),
          ),
          extension(
            '1.3.6.1.5.5.7.1.1',
            new pkijs.InfoAccess({
              accessDescriptions: [new pkijs.AccessDescription({ accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: uri(OCSP_URL) })],
            }).toSchema(),
          ),
        ],
      });
      await certificate.sign(caKey, 'SHA-256', engine);
      return new Uint8Array(certificate.toSchema(true).toBER());
    },
    sign: () => crypto.subtle.sign(ECDSA, caKey, new Uint8Array(csrDer)),
  };
}

function pemBody(pem: string): ArrayBuffer {
  return new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')).buffer;
}

const node = await viaPkijs(globalThis.crypto);
const peculiar = await viaPkijs(new PeculiarCrypto() as unknown as Crypto);

// Each way must produce a certificate the CA's key verifies, or the comparison means nothing.
for (const way of [ours, node, peculiar]) {
  if (!verifyCertificateSignature(await way.issue(), ca.spki)) throw new Error('a built certificate does not verify');
}

const rows: [string, number, number, number][] = [];
for (const [label, key] of [
  ['parse a CSR and verify its signature', 'parse'],
  ['build and sign a leaf certificate', 'issue'],
] as const) {
  rows.push([label, await rate(ours[key]), await rate(node[key]), await rate(peculiar[key])]);
}
const bareNode = await rate(node.sign);
const barePeculiar = await rate(peculiar.sign);

const fmt = (perSecond: number) => Math.round(perSecond).toLocaleString('en-US');
const ratio = (ourRate: number, theirs: number) => `${(ourRate / theirs).toFixed(1)}×`;
console.log(
  `Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log(`operations per second, one at a time, ${SECONDS} s each, P-256 / SHA-256:\n`);
console.log(
  '| work | ours (src/x509) | pkijs + Node WebCrypto | pkijs + @peculiar/webcrypto | ours ÷ pkijs+Node | ours ÷ pkijs+peculiar |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const [label, mine, pkijsNode, pkijsPeculiar] of rows) {
  console.log(
    `| ${label} | ${fmt(mine)} | ${fmt(pkijsNode)} | ${fmt(pkijsPeculiar)} | ${ratio(mine, pkijsNode)} | ${ratio(mine, pkijsPeculiar)} |`,
  );
}
console.log(`| bare ECDSA P-256 signature (the floor) | — | ${fmt(bareNode)} | ${fmt(barePeculiar)} | — | — |`);
