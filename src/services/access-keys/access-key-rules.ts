/** Pure rules for access keys (§10.7): identifier and secret formats, and which actions a new key may get. */
import { createHash, randomInt } from 'node:crypto';
import { ACTIONS, isAction, type Action } from '../../auth/actions.ts';
import { errors } from '../../errors.ts';

const UPPER_ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ALPHANUMERIC = `${UPPER_ALPHANUMERIC}abcdefghijklmnopqrstuvwxyz`;
export const ACCESS_KEY_LENGTH = 20;
export const SECRET_LENGTH = 40;
export const MAX_DESCRIPTION_LENGTH = 255;

/** Uniform over the alphabet (randomInt rejects biased draws). */
function randomString(alphabet: string, length: number): string {
  return Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** Like Huawei IAM's AKs: 20 upper-case letters and digits. */
export const newAccessKeyId = (): string => randomString(UPPER_ALPHANUMERIC, ACCESS_KEY_LENGTH);

/** Like Huawei IAM's SKs: 40 letters and digits (about 238 bits). */
export const newSecret = (): string => randomString(ALPHANUMERIC, SECRET_LENGTH);

/** §9 item 3: only a caller holding the whole catalogue manages keys (and reads the audit log). */
export function holdsEveryAction(actions: ReadonlySet<string>): boolean {
  return ACTIONS.every((action) => actions.has(action));
}

/**
 * A new key gets the requested actions, or the caller's when none are requested; never an action outside the
 * catalogue or one the caller lacks. Listed in catalogue order, without repeats.
 */
export function grantedActions(requested: readonly string[] | undefined, callerActions: ReadonlySet<string>): Action[] {
  const wanted = requested ?? [...callerActions];
  const unknown = wanted.filter((action) => !isAction(action));
  if (requested && unknown.length > 0) throw errors.invalidParameter(`actions: unknown action '${unknown[0]}'`);
  const notHeld = wanted.filter((action) => isAction(action) && !callerActions.has(action));
  if (notHeld.length > 0) throw errors.invalidParameter(`actions: the caller does not hold '${notHeld[0]}'`);
  return ACTIONS.filter((action) => wanted.includes(action));
}

export function checkDescription(description: string | undefined): string {
  const value = description ?? '';
  if (value.length > MAX_DESCRIPTION_LENGTH) {
    throw errors.invalidParameter(`description must be at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  return value;
}

/**
 * The domain's one IAM project in this region (served to project-level SDK credentials, GET /v3/projects): a
 * stable 32-hex id derived from both, so it needs no table.
 */
export const projectIdOf = (domainId: string, region: string): string =>
  createHash('sha256').update(`${domainId}/${region}`).digest('hex').slice(0, 32);
