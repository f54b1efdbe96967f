// Fast unit tests of envelope sealing: round trips, binding to the key id and master key, tamper detection, rewrap.
import t from 'tap';
import { KeyStoreError, createSealer } from '../../src/keystore/sealing.ts';

const master = (byte: number) => new Uint8Array(32).fill(byte);
const secret = new TextEncoder().encode('-----BEGIN PRIVATE KEY----- secret');
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const failure = (fn: () => unknown) => {
  try {
    fn();
    return 'no error thrown';
  } catch (error) {
    return error instanceof KeyStoreError ? error.message : `not a KeyStoreError: ${String(error)}`;
  }
};
const AUTH = /failed authentication/;

t.test('the master key must be exactly 32 bytes', async (t) => {
  t.match(
    failure(() => createSealer(new Uint8Array(31))),
    'the master key must be 32 bytes, got 31',
  );
  t.match(
    failure(() => createSealer(new Uint8Array(33))),
    'the master key must be 32 bytes, got 33',
  );
  t.ok(createSealer(master(1)));
  t.match(
    failure(() => createSealer(master(1), [new Uint8Array(16)])),
    'another master key must be 32 bytes, got 16',
  );
});

t.test('other master keys open what was sealed under them; only the master key seals', async (t) => {
  const [current, previous] = [master(1), master(2)];
  const oldItem = createSealer(previous).seal(Buffer.from('old'), 'k');
  const both = createSealer(current, [previous]);
  t.equal(Buffer.from(both.unseal(oldItem, 'k')).toString(), 'old', 'an item of the other key opens');
  const newItem = both.seal(Buffer.from('new'), 'k');
  t.equal(newItem.split('.')[1], createSealer(current).fingerprint, 'sealed under the master key');
  t.match(
    failure(() => createSealer(previous).unseal(newItem, 'k')),
    /different master key/,
  );
  t.equal(both.rewrap(newItem, 'k', createSealer(current)), newItem, 'an item already under the target key is left as it is');
  t.match(
    failure(() => createSealer(current).unseal(oldItem, 'k')),
    /different master key/,
    'without the other key, the old item does not open',
  );
});

t.test('seal then unseal gives the plaintext back; the sealed form reveals nothing of it', async (t) => {
  const sealer = createSealer(master(1));
  const sealed = sealer.seal(secret, 'key-1');
  t.same(sealer.unseal(sealed, 'key-1'), secret);
  const parts = sealed.split('.');
  t.equal(parts.length, 4);
  t.equal(parts[0], 'v1');
  t.equal(parts[1], sealer.fingerprint);
  t.notOk(sealed.includes(b64(secret)), 'plaintext not in the clear');
  t.notOk(sealed.includes('secret'));
  t.not(sealer.seal(secret, 'key-1'), sealed, 'a fresh data key and IV each time');
  t.same(sealer.unseal(sealer.seal(new Uint8Array(0), 'k'), 'k'), new Uint8Array(0), 'empty plaintext');
});

t.test('the fingerprint is stable per master key, 8 bytes, and differs between keys', async (t) => {
  const a = createSealer(master(1));
  t.equal(a.fingerprint, createSealer(master(1)).fingerprint);
  t.not(a.fingerprint, createSealer(master(2)).fingerprint);
  t.equal(Buffer.from(a.fingerprint, 'base64url').length, 8);
  t.match(a.fingerprint, /^[A-Za-z0-9_-]{11}$/);
});

t.test('a sealed item opens only under its own key id', async (t) => {
  const sealer = createSealer(master(1));
  const sealed = sealer.seal(secret, 'key-1');
  t.match(
    failure(() => sealer.unseal(sealed, 'key-2')),
    AUTH,
  );
  t.match(
    failure(() => sealer.unseal(sealed, 'key-2')),
    /wrapped data key/,
    'the wrapped data key is bound to the key id',
  );
});

t.test('a sealed item opens only under its own master key', async (t) => {
  const sealed = createSealer(master(1)).seal(secret, 'key-1');
  const other = createSealer(master(2));
  t.match(
    failure(() => other.unseal(sealed, 'key-1')),
    /different master key \(fingerprint .+, configured master key .+\)/,
  );
  const forged = ['v1', other.fingerprint, ...sealed.split('.').slice(2)].join('.');
  t.match(
    failure(() => other.unseal(forged, 'key-1')),
    AUTH,
    'relabelling the fingerprint does not help',
  );
});

t.test('any edited part fails authentication', async (t) => {
  const sealer = createSealer(master(1));
  const [version, fingerprint, wrapped, body] = sealer.seal(secret, 'key-1').split('.');
  const flip = (text: string, index: number) => {
    const bytes = Buffer.from(text, 'base64url');
    bytes[index] ^= 1;
    return b64(bytes);
  };
  for (const index of [0, 12, 20, -1]) {
    const wrappedBytes = Buffer.from(wrapped, 'base64url');
    const bodyBytes = Buffer.from(body, 'base64url');
    t.match(
      failure(() =>
        sealer.unseal([version, fingerprint, flip(wrapped, (index + wrappedBytes.length) % wrappedBytes.length), body].join('.'), 'key-1'),
      ),
      /failed authentication \(wrapped data key\)/,
      `wrapped byte ${index}`,
    );
    t.match(
      failure(() =>
        sealer.unseal([version, fingerprint, wrapped, flip(body, (index + bodyBytes.length) % bodyBytes.length)].join('.'), 'key-1'),
      ),
      /failed authentication \(encrypted body\)/,
      `body byte ${index}`,
    );
  }
  t.match(
    failure(() => sealer.unseal([version, fingerprint, wrapped, b64(Buffer.alloc(27))].join('.'), 'key-1')),
    /encrypted body/,
    'a box shorter than IV and tag',
  );
  t.match(
    failure(() => sealer.unseal([version, fingerprint, b64(Buffer.alloc(27)), body].join('.'), 'key-1')),
    /wrapped data key/,
  );
  const other = sealer.seal(secret, 'key-1').split('.');
  t.match(
    failure(() => sealer.unseal([version, fingerprint, wrapped, other[3]].join('.'), 'key-1')),
    /encrypted body/,
    'a body from another item',
  );
});

t.test('malformed items are refused with the reason', async (t) => {
  const sealer = createSealer(master(1));
  const [, fingerprint, wrapped, body] = sealer.seal(secret, 'key-1').split('.');
  t.match(
    failure(() => sealer.unseal(['v2', fingerprint, wrapped, body].join('.'), 'key-1')),
    'unsupported format (expected v1)',
  );
  t.match(
    failure(() => sealer.unseal(['v1', fingerprint, wrapped].join('.'), 'key-1')),
    'malformed (expected 4 parts)',
  );
  t.match(
    failure(() => sealer.unseal(['v1', fingerprint, wrapped, body, 'x'].join('.'), 'key-1')),
    'malformed (expected 4 parts)',
  );
  t.match(
    failure(() => sealer.unseal(['v1', fingerprint, `${wrapped}!`, body].join('.'), 'key-1')),
    'invalid base64url',
  );
  t.match(
    failure(() => sealer.unseal(['v1', fingerprint, wrapped, ''].join('.'), 'key-1')),
    'invalid base64url',
  );
  t.match(
    failure(() => sealer.unseal(['v1', fingerprint, wrapped, `${body}=`].join('.'), 'key-1')),
    'invalid base64url',
    'padding is not base64url',
  );
});

t.test('rewrap moves an item to a new master key without touching the body', async (t) => {
  const oldSealer = createSealer(master(1));
  const newSealer = createSealer(master(2));
  const sealed = oldSealer.seal(secret, 'key-1');
  const rewrapped = oldSealer.rewrap(sealed, 'key-1', newSealer);
  t.equal(rewrapped.split('.')[1], newSealer.fingerprint);
  t.equal(rewrapped.split('.')[3], sealed.split('.')[3], 'body unchanged');
  t.not(rewrapped.split('.')[2], sealed.split('.')[2]);
  t.same(newSealer.unseal(rewrapped, 'key-1'), secret);
  t.match(
    failure(() => oldSealer.unseal(rewrapped, 'key-1')),
    /different master key/,
  );
  t.match(
    failure(() => newSealer.unseal(rewrapped, 'key-2')),
    AUTH,
  );
});

t.test('rewrap refuses an item whose body does not authenticate, a wrong key id, or a foreign sealer', async (t) => {
  const oldSealer = createSealer(master(1));
  const newSealer = createSealer(master(2));
  const [version, fingerprint, wrapped] = oldSealer.seal(secret, 'key-1').split('.');
  const otherBody = oldSealer.seal(secret, 'key-1').split('.')[3];
  t.match(
    failure(() => oldSealer.rewrap([version, fingerprint, wrapped, otherBody].join('.'), 'key-1', newSealer)),
    /encrypted body/,
  );
  t.match(
    failure(() => oldSealer.rewrap(oldSealer.seal(secret, 'key-1'), 'key-2', newSealer)),
    AUTH,
  );
  const impostor = { fingerprint: 'x', seal: () => '', unseal: () => new Uint8Array(), rewrap: () => '' };
  t.match(
    failure(() => oldSealer.rewrap(oldSealer.seal(secret, 'key-1'), 'key-1', impostor)),
    'rewrap needs a sealer made by createSealer',
  );
});

t.test('an item sealed by an earlier release still unseals: the v1 format (labels, AADs, fingerprint) is fixed', async (t) => {
  // Sealed on 2026-12-03 with master key 00 01 … 1f. A changed label or AAD would strand every stored CA key.
  const sealer = createSealer(Uint8Array.from({ length: 32 }, (_, index) => index));
  const stored =
    'v1.uwyiV4qgN5U.Qj_V8s3XgQOjk_y0FBODn14_2oFyQfQb4O1SWkB9Pj4dBSuX5yoBYFJWL1C3vSVL6pfmKzMy5BjoUXB7.FAokigydgC2SfEKiuThozfIS9HKaAQoVbmJuszxOVDzDX-R2XMGn5HkNASKI7JZfK3DnEr6xi3pa5QG1QA';
  t.equal(sealer.fingerprint, 'uwyiV4qgN5U', 'the master key fingerprint');
  t.equal(new TextDecoder().decode(sealer.unseal(stored, 'key-vector-1')), 'sealed on 2026-12-03 by format v1');
  t.match(
    failure(() => sealer.unseal(stored, 'key-vector-2')),
    AUTH,
    'still bound to its key id',
  );
});
