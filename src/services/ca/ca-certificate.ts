/**
 * Signing a CA's own certificate: self-signed for a root, by an issuer of this service for a subordinate
 * (§4.2.1 certificate content). Runs inside the caller's transaction so the issuer's FOR SHARE lock covers it.
 */
import type { Config } from '../../config.ts';
import type { KeyStores } from '../../keystore/index.ts';
import { keyFamily, type HashAlgorithm, type Signer } from '../../x509/algorithms.ts';
import { buildCertificate, randomSerial, serialToHex } from '../../x509/certificate.ts';
import type { KeyUsage } from '../../x509/extensions.ts';
import type { NameConstraints } from '../../x509/name-constraints.ts';
import { encodeName, type DistinguishedName } from '../../x509/name.ts';
import type { RequestContext, Tx } from '../context.ts';
import {
  MAX_ROOT_YEARS,
  MAX_SUBORDINATE_YEARS,
  ROOT_PATH_LENGTH,
  caKeyUsages,
  checkSubordinatePathLength,
  validityWindow,
  type CaType,
  type Validity,
} from './ca-rules.ts';
import { assertIssuanceAllowed } from '../policy/index.ts';
import { issuerRules, loadIssuer } from './issuer.ts';

export interface CaSigningRequest {
  type: CaType;
  dn: DistinguishedName;
  spki: Uint8Array;
  /** The new CA's own signer: signs a root's certificate. */
  ownSigner: Signer;
  hash: HashAlgorithm;
  validity: Validity;
  /** Subordinates only: id or URN of the parent. */
  issuerRef?: string;
  pathLength?: number | null;
  keyUsages?: KeyUsage[] | null;
  /** RFC 5280 name constraints the CA certificate carries (critical). */
  nameConstraints?: NameConstraints | null;
}

export interface SignedCaCertificate {
  certificateDer: Uint8Array;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  pathLength: number;
  issuerId: string | null;
  keyUsages: KeyUsage[];
}

export interface CaSigningDeps {
  config: Pick<Config, 'region' | 'publicBaseUrl'>;
  keyStores: KeyStores;
}

export async function signCaCertificate(
  tx: Tx,
  ctx: RequestContext,
  request: CaSigningRequest,
  now: Date,
  deps: CaSigningDeps,
): Promise<SignedCaCertificate> {
  const subject = encodeName(request.dn);
  const serial = randomSerial();
  if (request.type === 'ROOT') {
    const { notBefore, notAfter } = validityWindow(request.validity, now, MAX_ROOT_YEARS);
    const keyUsages = caKeyUsages(undefined, keyFamily(request.ownSigner.keyAlgorithm));
    const certificateDer = await buildCertificate(
      {
        serialNumber: serial,
        subject,
        issuer: subject,
        notBefore,
        notAfter,
        spki: request.spki,
        hash: request.hash,
        basicConstraints: { ca: true },
        keyUsages,
        nameConstraints: request.nameConstraints,
      },
      request.ownSigner,
    );
    return {
      certificateDer,
      serialNumber: serialToHex(serial),
      notBefore,
      notAfter,
      pathLength: ROOT_PATH_LENGTH,
      issuerId: null,
      keyUsages,
    };
  }
  const issuer = await loadIssuer(tx, ctx, request.issuerRef!, {
    region: deps.config.region,
    publicUrls: deps.config,
    keyStores: deps.keyStores,
    now,
    lock: 'share',
  });
  const pathLength = checkSubordinatePathLength(request.pathLength, issuer.pathLength);
  const { notBefore, notAfter } = validityWindow(request.validity, now, MAX_SUBORDINATE_YEARS, issuer.notAfter, issuer.row.notBefore);
  // The parent's chain constraints and issuance policy judge the subordinate like any CA it signs.
  assertIssuanceAllowed(issuerRules(issuer), {
    kind: 'CA',
    names: [],
    notBefore,
    notAfter,
    keyAlgorithm: request.ownSigner.keyAlgorithm,
    extendedKeyUsages: [],
    nameConstraints: request.nameConstraints,
  });
  const keyUsages = caKeyUsages(request.keyUsages ?? undefined, keyFamily(request.ownSigner.keyAlgorithm));
  const certificateDer = await buildCertificate(
    {
      serialNumber: serial,
      subject,
      issuer: issuer.subjectDer,
      notBefore,
      notAfter,
      spki: request.spki,
      hash: request.hash,
      basicConstraints: { ca: true, pathLength },
      keyUsages,
      authorityKeyIdentifier: issuer.subjectKeyIdentifier,
      crlDistributionPoint: issuer.urls.crlDistributionPoint,
      ocspUrl: issuer.urls.ocsp,
      caIssuersUrl: issuer.urls.caIssuers,
      nameConstraints: request.nameConstraints,
    },
    issuer.signer,
  );
  return { certificateDer, serialNumber: serialToHex(serial), notBefore, notAfter, pathLength, issuerId: issuer.row.id, keyUsages };
}
