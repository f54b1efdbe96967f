/**
 * The 20-tag limit under concurrent writes on a real Postgres (where transactions truly overlap): however the
 * writes interleave, a resource never holds more than 20 tags, and the stored keys are exactly those of the
 * writes that were answered 204.
 */
import { randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import { createTestAppOnRealPostgres } from '../helpers/app.ts';
import { realPostgresOrSkipFile } from '../helpers/database.ts';
import { CA, DN, client } from '../ca/support.ts';

const CERT = '/v1/private-certificates';
const harness = await createTestAppOnRealPostgres(await realPostgresOrSkipFile(t));
t.teardown(() => harness.close());
const api = client(harness);
const prisma = harness.database.prisma;
const root = await api.root({ distinguished_name: { ...DN, common_name: 'tag-race-root' } });

async function certificate(): Promise<string> {
  const id = randomUUID();
  const now = new Date();
  await prisma.certificate.create({
    data: {
      id,
      domainId: harness.config.defaultDomainId,
      issuerId: root,
      status: 'ISSUED',
      genMode: 'CSR',
      keyAlgorithm: 'EC256',
      signatureAlgorithm: 'SHA256',
      commonName: 'raced',
      serialNumber: randomUUID().replace(/-/g, ''),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      certificateDer: new Uint8Array([0x30, 0]),
    },
  });
  return id;
}

type Tag = { key: string; value: string };

/** Sends the writes at once; checks each refusal's reason and that the stored keys are the answered writes' keys. */
async function race(t: Test, path: string, bodies: Tag[][]): Promise<{ accepted: number; stored: number }> {
  const responses = await Promise.all(bodies.map((tags) => api.call('POST', `${path}/tags/create`, { tags })));
  const acceptedKeys = new Set<string>();
  let accepted = 0;
  for (const [index, response] of responses.entries()) {
    if (response.status === 204) {
      accepted++;
      for (const tag of bodies[index]) acceptedKeys.add(tag.key);
      continue;
    }
    // The limit, or a transaction that waited past its limit on this loaded machine (then retried by clients).
    t.ok(
      (response.status === 400 && /at most 20 tags/.test(response.body.error_msg)) || response.status === 503,
      `refused as the limit or a busy database: ${response.status} ${JSON.stringify(response.body)}`,
    );
  }
  const stored = (await api.call('GET', `${path}/tags`)).body.tags.map((tag: Tag) => tag.key);
  t.ok(stored.length <= 20, `${stored.length} tags stored, at most 20`);
  t.same([...stored].sort(), [...acceptedKeys].sort(), 'exactly the keys of the answered writes are stored');
  return { accepted, stored: stored.length };
}

const batch = (prefix: string, size: number) => Array.from({ length: size }, (_, i) => ({ key: `${prefix}-${i}`, value: 'v' }));

for (const kind of ['CERTIFICATE', 'CA'] as const) {
  const resource = async () => (kind === 'CA' ? `${CA}/${await api.subordinate(root)}` : `${CERT}/${await certificate()}`);

  t.test(`${kind}: two concurrent batches of 11 new keys: one is stored, never 22`, async (t) => {
    for (let round = 0; round < 5; round++) {
      const { accepted, stored } = await race(t, await resource(), [batch('a', 11), batch('b', 11)]);
      t.ok(accepted <= 1, `round ${round}: ${accepted} batch answered 204`);
      if (accepted === 1) t.equal(stored, 11);
    }
  });

  t.test(`${kind}: 25 concurrent single adds: at most 20 stored, each answered add stored`, async (t) => {
    const path = await resource();
    const { accepted, stored } = await race(
      t,
      path,
      Array.from({ length: 25 }, (_, i) => [{ key: `single-${i}`, value: 'v' }]),
    );
    t.equal(stored, accepted);
    t.ok(accepted <= 20);
  });
}
