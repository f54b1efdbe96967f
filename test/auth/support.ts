/**
 * Huawei SDK signers for the credential tests. The Node SDK (3.1.x) ships only AKSKSigner and DerivedAKSKSigner;
 * the SM3 and ECDSA signers here are its AKSKSigner with the digest and final step swapped as Huawei's Go SDK does
 * (its static methods call each other through `this`), so canonicalization stays the SDK's own code.
 */
import { createHash, createHmac, createPrivateKey, sign as signData } from 'node:crypto';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner.js';
import {
  checkSignedHead,
  type SignedRequest,
  unknownAccessKey,
  type VerifiedSignature,
  type VerifyOptions,
  verifySignedBody,
} from '../../src/auth/sdk-hmac.ts';
import { derivedPrivateScalar } from '../../src/auth/signature-algorithms.ts';

export interface KeyPair {
  access: string;
  secret: string;
}

/** The static `sign(request, credentials)` of the SDK's signer classes: the headers to send. */
export type StaticSigner = { sign(request: unknown, credential: unknown): Record<string, string> };

const sm3Hex = (data: string | Buffer) => createHash('sm3').update(data).digest('hex');

/** The SDK's AKSKSigner with SM3 for every digest and HMAC (Go SDK's SM3Signer), X-Sdk-Content-Sm3 for the body. */
export class Sm3Signer extends AKSKSigner {
  static override SDK_SIGNING_ALGORITHM = 'SDK-HMAC-SM3';
  static override HeaderContentSha256 = 'X-Sdk-Content-Sm3';
  static override EMPTY_BODY_SHA256 = sm3Hex('');
  static override Hex(text: string) {
    return sm3Hex(text);
  }
  static override hmacSHA256(secret: string | undefined, text: string) {
    return createHmac('sm3', secret!).update(text).digest('hex');
  }
  static override buildPayloadHash(request: { headers: Record<string, string>; data?: unknown }) {
    return (
      request.headers[Sm3Signer.HeaderContentSha256] ?? (request.data ? sm3Hex(JSON.stringify(request.data)) : Sm3Signer.EMPTY_BODY_SHA256)
    );
  }
}

/** The SDK's AKSKSigner whose final HMAC is replaced by ECDSA P-256 with the key derived from AK/SK (Go SDK). */
export function ecdsaSignerFor(key: KeyPair): StaticSigner {
  const d = derivedPrivateScalar('SDK-ECDSA-P256-SHA256', key.access, key.secret);
  // PKCS#8 of an EC P-256 key with only its scalar (ECDSA signing needs no public point).
  const pkcs8 = Buffer.concat([
    Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex'),
    Buffer.from(d.toString(16).padStart(64, '0'), 'hex'),
  ]);
  const privateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return class extends AKSKSigner {
    static override SDK_SIGNING_ALGORITHM = 'SDK-ECDSA-P256-SHA256';
    static override hmacSHA256(_secret: string | undefined, text: string) {
      return signData('sha256', Buffer.from(text), privateKey).toString('hex');
    }
  } as unknown as StaticSigner;
}

/** The SDK exception of a rejected call (ClientRequestException: httpStatusCode, errorCode); a success fails the test. */
export async function sdkError(call: Promise<unknown>): Promise<{ httpStatusCode: number; errorCode: string; errorMsg: string }> {
  try {
    await call;
  } catch (error) {
    return error as { httpStatusCode: number; errorCode: string; errorMsg: string };
  }
  throw new Error('the call succeeded');
}

/** Verifies a signed request as the server does, in its two steps (the head, then the body), with a secret per key. */
export async function verifySdkSignature(
  req: SignedRequest,
  lookupSecret: (access: string) => Promise<string | undefined>,
  now: Date,
  opts: VerifyOptions & { hostOverride?: string } = {},
): Promise<VerifiedSignature> {
  const head = checkSignedHead(req.headers, now, opts);
  const secret = await lookupSecret(head.credential.access);
  if (secret === undefined) throw unknownAccessKey(head.credential.access);
  return verifySignedBody(req, head, secret, opts.hostOverride);
}
