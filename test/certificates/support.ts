/**
 * Fixtures for the certificate tests: a CA hierarchy seeded straight into the test database (keys in a software
 * key store under the app's master key, so the app signs with them), openssl-made keys and CSRs, and openssl
 * verification of what the service issues.
 */
import { randomUUID } from 'node:crypto';
import type { TestApp } from '../helpers/app.ts';
import { createKeyStores, keyStoreSigner } from '../../src/keystore/index.ts';
import type { HashAlgorithm, KeyAlgorithm } from '../../src/x509/algorithms.ts';
import { buildCertificate, parseCertificate, randomSerial, serialToHex } from '../../src/x509/certificate.ts';
import { encodeName, type DistinguishedName } from '../../src/x509/name.ts';
import { toPem } from '../../src/x509/pem.ts';
import { subjectKeyIdentifier } from '../../src/x509/public-key.ts';
import { openssl, scratch } from '../x509/support.ts';

export { openssl, scratch };

export interface SeededCa {
  id: string;
  pem: string;
  der: Uint8Array;
}

export interface SeedCaOptions {
  commonName: string;
  keyAlgorithm?: KeyAlgorithm;
  hash?: HashAlgorithm;
  parent?: SeededCa;
  /** Stored path length; 7 for a root. */
  pathLength?: number;
  validityDays?: number;
  domainId?: string;
  status?: string;
}

const DAY_MS = 86_400_000;

/** An ACTIVED CA (root without `parent`) whose key the app's software key store can use. */
export async function seedCa(harness: TestApp, options: SeedCaOptions): Promise<SeededCa> {
  const stores = createKeyStores({ masterKey: harness.config.masterKey });
  const keyAlgorithm = options.keyAlgorithm ?? 'EC256';
  const hash = options.hash ?? 'SHA256';
  const key = await stores.software.generate(keyAlgorithm);
  const dn: DistinguishedName = {
    common_name: options.commonName,
    country: 'CN',
    state: 'zhejiang',
    locality: 'hangzhou',
    organization: 'huawei-cloud',
    organizational_unit: 'container',
  };
  const prisma = harness.database.prisma;
  const parentRow = options.parent ? await prisma.certificateAuthority.findUniqueOrThrow({ where: { id: options.parent.id } }) : undefined;
  const parentSigner = parentRow ? keyStoreSigner(stores.software, parentRow.keyRef!, parentRow.keyAlgorithm as KeyAlgorithm) : undefined;
  const serial = randomSerial();
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (options.validityDays ?? 365) * DAY_MS);
  const pathLength = options.parent ? (options.pathLength ?? 0) : 7;
  const der = await buildCertificate(
    {
      serialNumber: serial,
      subject: dn,
      issuer: parentRow ? parseCertificate(new Uint8Array(parentRow.certificateDer!)).subjectDer : encodeName(dn),
      notBefore,
      notAfter,
      spki: key.spki,
      hash,
      basicConstraints: options.parent ? { ca: true, pathLength } : { ca: true },
      keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
      authorityKeyIdentifier: parentRow ? subjectKeyIdentifier(new Uint8Array(parentRow.publicKeySpki!)) : undefined,
    },
    parentSigner ?? keyStoreSigner(stores.software, key.keyRef, keyAlgorithm),
  );
  const id = randomUUID();
  await prisma.certificateAuthority.create({
    data: {
      id,
      domainId: options.domainId ?? harness.config.defaultDomainId,
      type: options.parent ? 'SUBORDINATE' : 'ROOT',
      status: options.status ?? 'ACTIVED',
      genMode: 'GENERATE',
      pathLength,
      issuerId: options.parent?.id ?? null,
      keyAlgorithm,
      signatureAlgorithm: hash,
      keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
      commonName: dn.common_name,
      country: dn.country,
      state: dn.state,
      locality: dn.locality,
      organization: dn.organization,
      organizationalUnit: dn.organizational_unit,
      serialNumber: serialToHex(serial),
      notBefore,
      notAfter,
      certificateDer: new Uint8Array(der),
      keyStore: 'software',
      keyRef: key.keyRef,
      publicKeySpki: new Uint8Array(key.spki),
      updatedAt: new Date(),
    },
  });
  return { id, der, pem: toPem('CERTIFICATE', der) };
}

export type Scratch = Awaited<ReturnType<typeof scratch>>;

/** A private key made by openssl (`genpkey` arguments) and a CSR over it made by `openssl req`. */
export async function opensslCsr(
  dir: Scratch,
  name: string,
  keyArgs: string[],
  reqArgs: string[] = ['-subj', `/CN=${name}`],
): Promise<{ keyFile: string; csr: string }> {
  const keyFile = dir.file(`${name}.key`);
  const generated = await openssl(['genpkey', ...keyArgs, '-out', keyFile]);
  if (!generated.ok) throw new Error(`openssl genpkey failed: ${generated.stderr}`);
  const csrFile = dir.file(`${name}.csr`);
  const request = await openssl(['req', '-new', '-key', keyFile, '-out', csrFile, ...reqArgs]);
  if (!request.ok) throw new Error(`openssl req failed: ${request.stderr}`);
  return { keyFile, csr: (await dir.read(`${name}.csr`)).toString('utf8') };
}

/**
 * `openssl x509 -req`: a CA outside the service (its certificate and key in files) signs a CSR file for one day
 * with the extensions of `extFile`, into `out`; the serial is openssl's own (-CAcreateserial) unless given.
 */
export function opensslSign(files: { csr: string; ca: string; caKey: string; extFile: string; out: string; serial?: string }) {
  const serial = files.serial === undefined ? ['-CAcreateserial'] : ['-set_serial', files.serial];
  return openssl([
    'x509',
    '-req',
    '-in',
    files.csr,
    '-CA',
    files.ca,
    '-CAkey',
    files.caKey,
    ...serial,
    '-days',
    '1',
    '-extfile',
    files.extFile,
    '-out',
    files.out,
  ]);
}

/** openssl req arguments for a CA named `name`: its subject, CA:TRUE and the usages a CA signs with, plus `extra`. */
export function caRequestArgs(name: string, ...extraExtensions: string[]): string[] {
  return [
    '-subj',
    `/CN=${name}`,
    ...['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign', ...extraExtensions].flatMap((extension) => [
      '-addext',
      extension,
    ]),
  ];
}

export const KEY_ARGS = {
  rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
} as const;

/** `openssl verify -x509_strict` of a leaf against a root, with intermediates as untrusted. */
export async function verifyStrict(dir: Scratch, leafPem: string, rootPem: string, intermediatesPem: string[] = [], extra: string[] = []) {
  const tag = randomUUID();
  const leaf = await dir.write(`${tag}-leaf.pem`, leafPem);
  const root = await dir.write(`${tag}-root.pem`, rootPem);
  const untrusted = intermediatesPem.length > 0 ? ['-untrusted', await dir.write(`${tag}-chain.pem`, intermediatesPem.join('\n'))] : [];
  return openssl(['verify', '-x509_strict', ...extra, '-CAfile', root, ...untrusted, leaf]);
}

/** openssl's text dump of a certificate. */
export async function certificateText(dir: Scratch, pem: string): Promise<string> {
  const file = await dir.write(`${randomUUID()}.pem`, pem);
  const result = await openssl(['x509', '-in', file, '-noout', '-text']);
  if (!result.ok) throw new Error(`openssl x509 failed: ${result.stderr}`);
  return result.stdout;
}

/** The PEM blocks of a chain text, in order. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
