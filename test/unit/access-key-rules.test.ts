// Fast unit tests of access-key rules: identifier and secret formats, granted actions, descriptions, project ids.
import t from 'tap';
import { ACTIONS } from '../../src/auth/actions.ts';
import { ErrorCode } from '../../src/errors.ts';
import {
  checkDescription,
  grantedActions,
  holdsEveryAction,
  newAccessKeyId,
  newSecret,
  projectIdOf,
} from '../../src/services/access-keys/access-key-rules.ts';
import { refusal } from './support.ts';

t.test('access key ids are 20 upper-case letters and digits; secrets 40 letters and digits', async (t) => {
  const ids = Array.from({ length: 200 }, newAccessKeyId);
  const secrets = Array.from({ length: 200 }, newSecret);
  for (const id of ids) t.match(id, /^[A-Z0-9]{20}$/);
  for (const secret of secrets) t.match(secret, /^[A-Za-z0-9]{40}$/);
  t.equal(new Set(ids).size, ids.length, 'no repeats');
  const letters = new Set(secrets.join(''));
  t.ok([...'aZ09'].every((c) => letters.has(c)) || letters.size > 55, 'secrets draw on both cases and digits');
  t.ok(new Set(ids.join('')).size > 30, 'ids use the whole alphabet');
});

t.test('only a caller holding every action holds the whole catalogue', async (t) => {
  t.ok(holdsEveryAction(new Set(ACTIONS)));
  t.notOk(holdsEveryAction(new Set(ACTIONS.slice(1))));
  t.notOk(holdsEveryAction(new Set()));
});

t.test('a new key gets the requested actions in catalogue order, once each', async (t) => {
  const caller = new Set<string>(ACTIONS);
  const [first, second, third] = ACTIONS;
  t.same(grantedActions([third, first, third], caller), [first, third]);
  t.same(grantedActions(undefined, new Set([second, first])), [first, second], "none requested: the caller's");
  t.same(grantedActions([], caller), [], 'an explicit empty list grants nothing');
  t.same(grantedActions(undefined, new Set([first, 'legacy:action'])), [first], 'unknown actions the caller holds are dropped');
});

t.test('never an unknown action or one the caller lacks', async (t) => {
  const [first, second] = ACTIONS;
  t.match(
    refusal(() => grantedActions([first, 'pca:nope'], new Set(ACTIONS))),
    { status: 400, code: ErrorCode.InvalidParameter, message: "actions: unknown action 'pca:nope'" },
  );
  t.match(
    refusal(() => grantedActions([first, second], new Set([first]))),
    { status: 400, code: ErrorCode.InvalidParameter, message: `actions: the caller does not hold '${second}'` },
  );
});

t.test('a description is optional and at most 255 characters', async (t) => {
  t.equal(checkDescription(undefined), '');
  t.equal(checkDescription('x'.repeat(255)), 'x'.repeat(255));
  t.match(
    refusal(() => checkDescription('x'.repeat(256))),
    { status: 400, code: ErrorCode.InvalidParameter, message: 'description must be at most 255 characters' },
  );
});

t.test('the project id is a stable 32-hex digest of domain and region', async (t) => {
  const id = projectIdOf('domain-a', 'cn-north-4');
  t.match(id, /^[0-9a-f]{32}$/);
  t.equal(projectIdOf('domain-a', 'cn-north-4'), id);
  t.not(projectIdOf('domain-b', 'cn-north-4'), id);
  t.not(projectIdOf('domain-a', 'cn-south-1'), id);
});
