/**
 * The access-key service keeps the secrets it unsealed (two AES-GCM operations a request otherwise), by the row's key
 * and sealed text: a key verified again is not unsealed again, while its row is still read each time (a deleted key
 * fails at once), and a row sealed anew (master-key rotation) is unsealed anew. The service alone, on the test
 * database, with a sealer that counts its unsealings.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { formatSdkDate, signRequest } from '../../src/auth/sdk-hmac.ts';
import { createSealer, type Sealer } from '../../src/keystore/sealing.ts';
import { createAccessKeyService } from '../../src/services/access-keys/access-key-service.ts';
import type { RequestContext } from '../../src/services/context.ts';
import { testConfig } from '../helpers/app.ts';
import { testDatabase } from '../helpers/database.ts';

const database = await testDatabase();
t.teardown(() => database.close());
const real = createSealer(randomBytes(32));
const unsealed: string[] = [];
const sealer: Sealer = {
  ...real,
  unseal(sealed, aad) {
    unsealed.push(aad);
    return real.unseal(sealed, aad);
  },
};
const service = createAccessKeyService({
  db: database.prisma,
  sql: database.query,
  clock: { now: () => new Date() },
  config: { region: testConfig().region, quotas: testConfig().quotas },
  sealer,
});
const context: RequestContext = { domainId: 'secrets-domain', actor: 'test-admin', requestId: 'test' };

/** A GET signed with the key, through the service as the auth hook calls it (head, then the whole request). */
async function verified(access: string, secret: string) {
  const headers = { host: 'pca.test', 'x-sdk-date': formatSdkDate(new Date()) };
  const request = { method: 'GET', url: '/v1/access-keys', headers, body: new Uint8Array() };
  const authorization = signRequest(request, access, secret, Object.keys(headers));
  const signed = { ...request, headers: { ...headers, authorization } };
  return service.verifyRequest(signed, undefined, await service.signingKeyOf(signed.headers));
}

t.test('a key verified again is not unsealed again; a deleted key fails at once; a row sealed anew is unsealed anew', async (t) => {
  const { key, secret } = await service.create(context, new Set(['pca:ca:list', 'pca:accessKey:create']), {
    actions: ['pca:ca:list'],
  } as never);
  unsealed.length = 0;
  for (let i = 0; i < 3; i++) t.equal((await verified(key.access, secret)).access, key.access, `verified (${i + 1})`);
  t.same(unsealed, [key.access], 'unsealed once for three requests');

  // What master-key rotation does to a row: the same secret, sealed anew.
  await database.prisma.accessKey.update({
    where: { access: key.access },
    data: { sealedSecret: real.seal(Buffer.from(secret, 'utf8'), key.access) },
  });
  await verified(key.access, secret);
  t.same(unsealed, [key.access, key.access], 'the row sealed anew is unsealed again');

  await service.remove(context, key.access);
  await t.rejects(verified(key.access, secret), /unknown access key/, 'deleted: refused at once, the kept secret notwithstanding');
});
