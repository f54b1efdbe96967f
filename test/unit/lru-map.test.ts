import t from 'tap';
import { LruMap } from '../../src/lru-map.ts';

t.test('holds at most max entries and forgets the least recently used first', async (t) => {
  const map = new LruMap<string, number>(3);
  map.set('a', 1);
  map.set('b', 2);
  map.set('c', 3);
  t.equal(map.get('a'), 1, 'a read makes "a" the most recently used');
  map.set('d', 4);
  t.equal(map.get('b'), undefined, '"b", least recently used, is forgotten');
  t.same([map.get('a'), map.get('c'), map.get('d')], [1, 3, 4], 'the others stay');
  map.set('c', 30);
  map.set('e', 5);
  t.equal(map.get('c'), 30, 'setting an existing key replaces it and counts as a use, without evicting another');
  t.equal(map.get('a'), undefined, '"a" was then the least recently used');
});

t.test('delete and clear', async (t) => {
  const map = new LruMap<string, number>(2);
  map.set('a', 1);
  map.set('b', 2);
  t.ok(map.delete('a'));
  t.notOk(map.delete('a'), 'already gone');
  map.set('c', 3);
  t.equal(map.get('b'), 2, 'a deleted entry leaves room: nothing else was evicted');
  map.clear();
  t.same([map.get('b'), map.get('c')], [undefined, undefined]);
});
