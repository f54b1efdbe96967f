/** The verified tokens' principals (src/auth/token-principals.ts) without HTTP: what is kept, for how long, and what is not. */
import t from 'tap';
import { createTokenPrincipals, MAX_KEPT_TOKENS, type VerifiedClaims } from '../../src/auth/token-principals.ts';
import { refusal } from './support.ts';

const EXP_SECONDS = 2_000_000_000;

/**
 * A verifier that accepts tokens named `good:<domain>` until EXP_SECONDS (`malformed:` and `numeric:` ones with claims the
 * service must refuse), counting its calls by token.
 */
function countingVerifier(clock: { now: number }) {
  const calls = new Map<string, number>();
  const verify = (token: string): VerifiedClaims => {
    calls.set(token, (calls.get(token) ?? 0) + 1);
    const kind = token.slice(0, token.indexOf(':'));
    const domain = token.slice(kind.length + 1);
    if (kind === 'bad') throw new Error('signature mismatch');
    if (clock.now > EXP_SECONDS * 1000) throw new Error('The token has expired');
    const claims = { sub: 'ak-1', domain_id: domain, actions: ['pca:cert:create'], exp: EXP_SECONDS };
    if (kind === 'malformed') return { ...claims, actions: 'pca:cert:create' as unknown as string[] };
    if (kind === 'numeric') return { ...claims, domain_id: Number(domain) as unknown as string };
    return claims;
  };
  return { verify, calls: (token: string) => calls.get(token) ?? 0 };
}

t.test('a verified token is verified once and answers the same principal until its exp', async (t) => {
  const clock = { now: EXP_SECONDS * 1000 - 5000 };
  const verifier = countingVerifier(clock);
  const principalOf = createTokenPrincipals({ verify: verifier.verify, now: () => clock.now });
  const first = principalOf('good:d1');
  t.same({ ...first, actions: [...first.actions] }, { domainId: 'd1', subject: 'ak-1', actions: ['pca:cert:create'], via: 'jwt' });
  t.ok(Object.isFrozen(first), 'the shared principal cannot be changed by a request');
  clock.now = EXP_SECONDS * 1000 - 1;
  t.equal(principalOf('good:d1'), first, 'a repeat within exp: the same principal');
  t.equal(verifier.calls('good:d1'), 1, 'verified once');
  t.equal(principalOf('good:d2').domainId, 'd2', 'another token is verified on its own');
  t.equal(verifier.calls('good:d2'), 1);

  clock.now = EXP_SECONDS * 1000;
  t.equal(
    refusal(() => principalOf('good:d1')),
    'no error thrown',
    'at exp itself the verifier judges again (it accepts)',
  );
  t.equal(verifier.calls('good:d1'), 2, 'not answered from the map at exp');
  clock.now = EXP_SECONDS * 1000 + 1;
  t.match(
    refusal(() => principalOf('good:d1')),
    { status: 401, message: /^invalid token: The token has expired/ },
    'past exp: refused',
  );
  t.match(
    refusal(() => principalOf('good:d1')),
    { status: 401 },
    'and refused again',
  );
  t.equal(verifier.calls('good:d1'), 4, 'each refusal verified afresh');
});

t.test('refusals are not kept: a bad token is verified (and refused) every time', async (t) => {
  const clock = { now: 0 };
  const verifier = countingVerifier(clock);
  const principalOf = createTokenPrincipals({ verify: verifier.verify, now: () => clock.now });
  for (let i = 0; i < 3; i++) {
    t.match(
      refusal(() => principalOf('bad:d1')),
      { status: 401, message: /^invalid token: signature mismatch/ },
    );
    t.match(
      refusal(() => principalOf('malformed:d1')),
      { status: 401, message: /^invalid token: malformed claims/ },
    );
  }
  t.equal(verifier.calls('bad:d1'), 3);
  t.equal(verifier.calls('malformed:d1'), 3, 'claims the service refuses are not kept either');
  t.match(
    refusal(() => principalOf('good:tenant:x')),
    { status: 401, message: /malformed claims/ },
    'a domain with a colon (a URN separator) is refused',
  );
  t.match(
    refusal(() => principalOf('good:')),
    { status: 401, message: /malformed claims/ },
    'an empty domain is refused',
  );
  t.match(
    refusal(() => principalOf('numeric:42')),
    { status: 401, message: /malformed claims/ },
    'a domain that is not a string is refused as malformed (not a TypeError)',
  );
});

t.test(`at most ${MAX_KEPT_TOKENS} tokens are kept; the oldest goes first`, async (t) => {
  const clock = { now: 0 };
  const verifier = countingVerifier(clock);
  const principalOf = createTokenPrincipals({ verify: verifier.verify, now: () => clock.now });
  for (let i = 0; i <= MAX_KEPT_TOKENS; i++) principalOf(`good:d${i}`);
  principalOf(`good:d${MAX_KEPT_TOKENS}`);
  t.equal(verifier.calls(`good:d${MAX_KEPT_TOKENS}`), 1, 'the newest is still kept');
  principalOf('good:d1');
  t.equal(verifier.calls('good:d1'), 1, 'the second oldest is still kept');
  principalOf('good:d0');
  t.equal(verifier.calls('good:d0'), 2, 'the oldest was let go and is verified again');
});
