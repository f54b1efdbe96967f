/**
 * The issuing CA's cached material (parsed certificate, signer, the chain's name constraints): concurrent signings
 * under an uncached CA, as one group-committed batch makes them on its one connection, read the chain once, and a
 * failed read is not remembered.
 */
import t from 'tap';
import type { SqlStatement } from '../../src/db/database.ts';
import type { SqlRunner } from '../../src/db/tx.ts';
import { createKeyStores } from '../../src/keystore/index.ts';
import { createIssuingCaLoader } from '../../src/services/certificates/issuing-ca.ts';
import { createTestApp } from '../helpers/app.ts';
import { seedCa } from './support.ts';

const harness = await createTestApp();
const keyStores = createKeyStores({ masterKey: harness.config.masterKey, pkcs11: undefined });
t.teardown(async () => {
  await keyStores.software.close();
  await harness.close();
});
const root = await seedCa(harness, { commonName: 'material-root' });
const sub = await seedCa(harness, { commonName: 'material-sub', parent: root });
const subRow = await harness.database.prisma.certificateAuthority.findUniqueOrThrow({ where: { id: sub.id } });

/** The database's own runner, recording the statements it is given; `failFirst` makes the first one fail. */
function recordingRunner(options: { failFirst?: boolean } = {}) {
  const statements: string[] = [];
  let fail = options.failFirst ?? false;
  const run: SqlRunner = async <Row>(statement: SqlStatement, values: unknown[]) => {
    statements.push(statement.name);
    if (fail) {
      fail = false;
      throw new Error('connection lost');
    }
    return harness.database.query<Row>(statement, values);
  };
  return { run, statements };
}

t.test('eight concurrent signings under an uncached CA read its chain once; later ones read nothing', async (t) => {
  const loader = createIssuingCaLoader({ config: harness.config, keyStores });
  const { run, statements } = recordingRunner();
  const now = new Date();
  const issuers = await Promise.all(Array.from({ length: 8 }, () => loader.issuingCaOf(run, subRow, now)));
  t.same(statements, ['ca-by-id'], 'one read of the parent');
  for (const issuer of issuers) {
    t.equal(issuer.row.id, sub.id);
    t.equal(issuer.subjectKeyIdentifier, issuers[0]!.subjectKeyIdentifier, 'the same material');
  }
  await loader.issuingCaOf(run, subRow, now);
  t.equal(statements.length, 1, 'cached');
});

t.test('a failed read is not cached: the next signing reads again and succeeds', async (t) => {
  const loader = createIssuingCaLoader({ config: harness.config, keyStores });
  const { run, statements } = recordingRunner({ failFirst: true });
  const now = new Date();
  await t.rejects(loader.issuingCaOf(run, subRow, now), /connection lost/);
  const issuer = await loader.issuingCaOf(run, subRow, now);
  t.equal(issuer.row.id, sub.id);
  t.same(statements, ['ca-by-id', 'ca-by-id']);
});
