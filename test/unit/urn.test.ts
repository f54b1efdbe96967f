// Fast unit tests of the one CA-reference parser (§10.1) and its two uses: a caller's reference, a public URL's.
import t from 'tap';
import { caUrn, parseCaReference, parsePublicCaReference, resolveCaReference } from '../../src/services/urn.ts';
import { refusal } from './support.ts';

const ID = '0f6a3c1e-2b4d-4e8f-9a1b-3c5d7e9f1a2b';
const options = { region: 'cn-north-4', domainId: 'd1', field: 'issuer_id' };

t.test('parseCaReference: a bare id, or a URN of this region naming its domain', async (t) => {
  t.same(parseCaReference(ID, 'cn-north-4', 'ca_id'), { id: ID });
  t.same(parseCaReference(caUrn('cn-north-4', 'd1', ID), 'cn-north-4', 'ca_id'), { id: ID, domainId: 'd1' });
  const bad: [string, string, RegExp][] = [
    ['upper-case id', ID.toUpperCase(), /^issuer_id must be a lowercase UUID or a CA URN$/],
    ['not an id', 'abc', /^issuer_id must be a lowercase UUID or a CA URN$/],
    ['empty', '', /lowercase UUID/],
    [
      'certificate URN',
      `pca:cn-north-4:d1:certificate:${ID}`,
      /^issuer_id is not a valid CA URN: expected pca:\{region\}:\{domain_id\}:ca:\{ca_id\}$/,
    ],
    ['six parts', `pca:cn-north-4:d1:ca:${ID}:x`, /not a valid CA URN/],
    ['no domain', `pca:cn-north-4::ca:${ID}`, /not a valid CA URN/],
    ['no region', `pca::d1:ca:${ID}`, /not a valid CA URN/],
    ['bad id in a URN', 'pca:cn-north-4:d1:ca:x', /not a valid CA URN/],
    ['another region', caUrn('eu-west-0', 'd1', ID), /^CA URN region 'eu-west-0' does not match this service's region 'cn-north-4'$/],
  ];
  for (const [name, reference, message] of bad) {
    t.match(
      refusal(() => parseCaReference(reference, 'cn-north-4', 'issuer_id')),
      { status: 400, code: 'PCA.00020201', message },
      name,
    );
  }
});

t.test("resolveCaReference: another domain's URN is not found", async (t) => {
  t.equal(resolveCaReference(ID, options), ID);
  t.equal(resolveCaReference(caUrn('cn-north-4', 'd1', ID), options), ID);
  t.match(
    refusal(() => resolveCaReference(caUrn('cn-north-4', 'd2', ID), options)),
    { status: 404, code: 'PCA.10010002', message: `CA ${ID} not found` },
  );
  t.match(
    refusal(() => resolveCaReference('x', options)),
    { status: 400, code: 'PCA.00020201' },
  );
});

t.test('parsePublicCaReference: null (a 404) for anything but an id or a URN of this region', async (t) => {
  t.same(parsePublicCaReference(ID, 'cn-north-4'), { id: ID });
  t.same(parsePublicCaReference(caUrn('cn-north-4', 'd2', ID), 'cn-north-4'), { id: ID, domainId: 'd2' });
  for (const reference of ['x', caUrn('eu-west-0', 'd1', ID), `pca:cn-north-4:d1:certificate:${ID}`, `pca:cn-north-4::ca:${ID}`]) {
    t.equal(parsePublicCaReference(reference, 'cn-north-4'), null, reference);
  }
});
