/**
 * A token of the PKCS#11 v2.20 era, which does not know CKA_COPYABLE (v2.40) and refuses a template holding it with
 * CKR_ATTRIBUTE_TYPE_INVALID: CA keys are still made, without that one attribute, everything else as on any token.
 * SoftHSM2 underneath; this process's pkcs11js answers key-pair generation as such a token would.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pkcs11js from 'pkcs11js';
import t from 'tap';
import { createPkcs11KeyStore } from '../../src/keystore/pkcs11-key-store.ts';
import { opensslVerifies, SOFTHSM_LIBRARY, softHsmToken, tokenPrivateKeys } from './support.ts';

const LABEL = 'pca-older-token';
const PIN = '4711';
const token = await softHsmToken(LABEL, PIN);
t.teardown(() => rm(token.dir, { recursive: true, force: true }));

type Attributes = { type: number }[];
let refusal = pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID;
const templatesSeen: Attributes[] = [];
// pkcs11js sets its methods on each instance: each library the store loads gets the older token's generation.
const load = pkcs11js.PKCS11.prototype.load;
pkcs11js.PKCS11.prototype.load = function (this: pkcs11js.PKCS11, library: string) {
  load.call(this, library);
  const generateKeyPair = this.C_GenerateKeyPairAsync.bind(this);
  this.C_GenerateKeyPairAsync = (session, mechanism, publicTemplate, privateTemplate) => {
    templatesSeen.push(privateTemplate as Attributes);
    if ((privateTemplate as Attributes).some(({ type }) => type === pkcs11js.CKA_COPYABLE)) {
      return Promise.reject(new pkcs11js.Pkcs11Error(`CKR_REFUSED:${refusal}`, refusal, 'C_GenerateKeyPair'));
    }
    return generateKeyPair(session, mechanism, publicTemplate, privateTemplate);
  };
};
t.teardown(() => {
  pkcs11js.PKCS11.prototype.load = load;
});

const store = createPkcs11KeyStore({ library: SOFTHSM_LIBRARY, tokenLabel: LABEL, pin: PIN });
t.teardown(() => store.close());

t.test('CKA_COPYABLE refused as unknown: the key is made without it, hardened otherwise, and signs', async (t) => {
  const key = await store.generate('EC256');
  t.equal(templatesSeen.length, 2, 'asked twice: with CKA_COPYABLE, then without');
  t.notOk(templatesSeen[1]!.some(({ type }) => type === pkcs11js.CKA_COPYABLE));
  t.equal(templatesSeen[1]!.length, templatesSeen[0]!.length - 1, 'only CKA_COPYABLE left out');
  const [onToken] = (await tokenPrivateKeys(LABEL, PIN)).filter((object) => `p11:${object.id}` === key.keyRef);
  t.match(onToken, { sensitive: true, neverExtractable: true, modifiable: false, decrypt: false, unwrap: false, derive: false });
  const data = randomBytes(100);
  t.ok(await opensslVerifies(key.spki, 'SHA256', data, await store.sign(key.keyRef, 'EC256', 'SHA256', data)), 'it signs');
});

t.test('any other refusal of the template is not retried without attributes', async (t) => {
  refusal = pkcs11js.CKR_TEMPLATE_INCONSISTENT;
  templatesSeen.length = 0;
  await t.rejects(store.generate('EC256'), { code: pkcs11js.CKR_TEMPLATE_INCONSISTENT });
  t.equal(templatesSeen.length, 1, 'asked once');
});
