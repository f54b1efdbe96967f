/**
 * §4.3 tag rules: a refusal names the field the caller sent, as §2 asks of every error_msg: `tag.key` in the single
 * form (`{"tag": {…}}`), `tags[i].key` in a batch, `tags[i].values[j]` in a filter.
 */
import t from 'tap';
import { createTestApp } from '../helpers/app.ts';
import { CA, DN, assertError, client } from '../ca/support.ts';

const CERT = '/v1/private-certificates';
const harness = await createTestApp();
t.teardown(() => harness.close());
const api = client(harness);
const { call } = api;
const root = await api.root({ distinguished_name: { ...DN, common_name: 'tag-messages-root' } });

const KEY_RULE = 'must be 1-128 characters: letters, digits, space or _ . : = + - @';
const VALUE_RULE = 'must be 0-255 characters: letters, digits, space or _ . : = + - @ /';
const exactly = (message: string) => new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

t.test('the single tag form names tag.key and tag.value, not a list entry', async (t) => {
  for (const key of ['a/b', '', 'k'.repeat(129), 'a\\b']) {
    assertError(
      t,
      await call('POST', `${CA}/${root}/tags`, { tag: { key, value: 'v' } }),
      400,
      'PCA.00020001',
      exactly(`tag.key ${KEY_RULE}`),
    );
  }
  assertError(
    t,
    await call('POST', `${CA}/${root}/tags`, { tag: { key: 'k', value: 'a\\b' } }),
    400,
    'PCA.00020001',
    exactly(`tag.value ${VALUE_RULE}`),
  );
  // The certificate form shares the rules; validation precedes the lookup, so no certificate is needed.
  const certificate = '0a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d';
  assertError(
    t,
    await call('POST', `${CERT}/${certificate}/tags`, { tag: { key: 'a/b', value: 'v' } }),
    400,
    'PCA.00020001',
    exactly(`tag.key ${KEY_RULE}`),
  );
  t.same((await call('GET', `${CA}/${root}/tags`)).body, { tags: [] }, 'nothing written');
  t.equal((await call('POST', `${CA}/${root}/tags`, { tag: { key: 'path', value: 'a/b' } })).status, 204, "'/' is fine in a value");
});

t.test('batches name the entry; a filter names the value within values', async (t) => {
  const batch = {
    tags: [
      { key: 'ok', value: 'v' },
      { key: 'a/b', value: 'v' },
    ],
  };
  assertError(t, await call('POST', `${CA}/${root}/tags/create`, batch), 400, 'PCA.00020001', exactly(`tags[1].key ${KEY_RULE}`));
  assertError(
    t,
    await call('DELETE', `${CA}/${root}/tags/delete`, { tags: [{ key: 'a/b' }] }),
    400,
    'PCA.00020001',
    exactly(`tags[0].key ${KEY_RULE}`),
  );
  assertError(
    t,
    await call('POST', `${CA}/${root}/tags/create`, { tags: [{ key: 'k', value: 'a\\b' }] }),
    400,
    'PCA.00020001',
    exactly(`tags[0].value ${VALUE_RULE}`),
  );
  for (const path of ['filter', 'count']) {
    const url = `${CA}/resource-instances/${path}`;
    assertError(
      t,
      await call('POST', url, { tags: [{ key: 'a/b', values: [] }] }),
      400,
      'PCA.00020001',
      exactly(`tags[0].key ${KEY_RULE}`),
    );
    assertError(
      t,
      await call('POST', url, {
        tags: [
          { key: 'env', values: [] },
          { key: 'team', values: ['ok', 'a\\b'] },
        ],
      }),
      400,
      'PCA.00020001',
      exactly(`tags[1].values[1] ${VALUE_RULE}`),
    );
  }
});
