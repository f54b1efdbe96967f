/** PEM (RFC 7468) as the contract writes it (§2): 64-character lines, `\r\n` breaks, no break after END. */
import { errors } from '../errors.ts';

export function toPem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  const lines: string[] = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`);
  return lines.join('\r\n');
}

/** Several PEM blocks as one text (a chain), joined by `\r\n`. */
export const joinPem = (blocks: readonly string[]): string => blocks.join('\r\n');

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/**
 * The DER blocks of a PEM text, in order. Accepts `\n`, `\r\n` or a mix, and ignores whitespace and explanatory
 * text around the blocks (RFC 7468 §2). `labels` restricts the accepted block labels. `what` names the field in
 * error messages.
 */
export function parsePemBlocks(text: string, labels?: string | readonly string[], what = 'PEM input'): Uint8Array[] {
  const accepted = typeof labels === 'string' ? [labels] : labels;
  const blocks: Uint8Array[] = [];
  for (const [, begin, body, end] of text.matchAll(BLOCK)) {
    if (begin !== end) throw errors.invalidParameter(`${what}: BEGIN ${begin} is closed by END ${end}`);
    if (accepted && !accepted.includes(begin)) {
      throw errors.invalidParameter(`${what}: expected ${accepted.join(' or ')}, found ${begin}`);
    }
    blocks.push(decodeBase64(body, what));
  }
  if (blocks.length === 0) throw errors.invalidParameter(`${what} contains no PEM block`);
  if (text.split('-----BEGIN').length - 1 !== blocks.length) {
    throw errors.invalidParameter(`${what} contains a PEM block without a matching END line`);
  }
  return blocks;
}

/** Exactly one DER block, from PEM or (leniently) from bare base64 without the BEGIN/END lines. */
export function parseSinglePem(text: string, labels: string | readonly string[], what: string): Uint8Array {
  if (!text.includes('-----BEGIN')) return decodeBase64(text, what);
  const blocks = parsePemBlocks(text, labels, what);
  if (blocks.length !== 1) {
    throw errors.invalidParameter(`${what} must hold exactly one PEM block, found ${blocks.length}`);
  }
  return blocks[0];
}

function decodeBase64(body: string, what: string): Uint8Array {
  const compact = body.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw errors.invalidParameter(`${what} is not valid base64`);
  }
  return new Uint8Array(Buffer.from(compact, 'base64'));
}
