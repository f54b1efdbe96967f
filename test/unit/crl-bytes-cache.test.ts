/** The CRL bytes cache: an entry answers only its CA's newest number; least recently used CAs leave past the budget. */
import t from 'tap';
import { createCrlBytesCache } from '../../src/services/revocation/crl-bytes-cache.ts';

const bytes = (length: number, fill: number) => new Uint8Array(length).fill(fill);

t.test('an entry is its CA and CRL number; a newer number replaces it', async (t) => {
  const cache = createCrlBytesCache(1000);
  cache.set('a', 1n, bytes(10, 1));
  t.same(cache.get('a', 1n), bytes(10, 1));
  t.equal(cache.get('a', 2n), undefined, 'another number of the CA: not this entry');
  t.equal(cache.get('b', 1n), undefined, 'another CA');
  cache.set('a', 2n, bytes(10, 2));
  t.equal(cache.get('a', 1n), undefined, 'the older number is gone');
  t.same(cache.get('a', 2n), bytes(10, 2));
});

t.test('past the budget the least recently used CA leaves; a CRL over a quarter of it is not kept', async (t) => {
  const cache = createCrlBytesCache(1000);
  cache.set('a', 1n, bytes(250, 1));
  cache.set('b', 1n, bytes(250, 2));
  cache.set('c', 1n, bytes(250, 3));
  cache.get('a', 1n); // used: b is now the least recent
  cache.set('d', 1n, bytes(250, 4));
  cache.set('e', 1n, bytes(250, 5));
  t.equal(cache.get('b', 1n), undefined, 'b left first');
  for (const [ca, fill] of [
    ['a', 1],
    ['c', 3],
    ['d', 4],
    ['e', 5],
  ] as const)
    t.same(cache.get(ca, 1n), bytes(250, fill), `${ca} kept`);
  cache.set('big', 1n, bytes(251, 9));
  t.equal(cache.get('big', 1n), undefined, 'over a quarter of the budget: not kept');
  t.same(cache.get('a', 1n), bytes(250, 1), 'and nothing was evicted for it');
});
