/** PEM (RFC 7468) as the contract writes it (§2): 64-character lines, `\r\n` breaks, no break after END. */
import { X509Error } from './x509-errors.ts';

export function toPem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString('base64');
  const lines: string[] = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < base64.length; i += 64) lines.push(base64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`);
  return lines.join('\r\n');
}

/** Several PEM blocks as one text (a chain), joined by `\r\n`. */
export const joinPem = (blocks: readonly string[]): string => blocks.join('\r\n');

/**
 * BEGIN and END lines. The label is bounded and cannot contain `-`, so each match reads at most a line's worth of
 * text past its `-----`: the scan is linear whatever the input (a lazy BEGIN…END pattern was quadratic on repeated
 * BEGIN lines without END).
 */
const BOUNDARY = /-----(BEGIN|END)([^-\r\n]{0,80})(-----)?/g;

export interface PemLimits {
  /** Refuse more blocks than this (checked while scanning, so a flood of blocks stops early). */
  maxBlocks?: number;
  /** Refuse a block whose text (between its BEGIN and END lines) is longer than this. */
  maxBlockChars?: number;
}

/**
 * The DER blocks of a PEM text, in order, in one linear pass. Accepts `\n`, `\r\n` or a mix, and ignores whitespace
 * and explanatory text around the blocks (RFC 7468 §2). `labels` restricts the accepted block labels. `what` names
 * the field in error messages.
 */
export function parsePemBlocks(
  text: string,
  labels?: string | readonly string[],
  what = 'PEM input',
  limits: PemLimits = {},
): Uint8Array[] {
  const accepted = typeof labels === 'string' ? [labels] : labels;
  const blocks: Uint8Array[] = [];
  let open: { label: string; bodyStart: number } | undefined;
  for (const match of text.matchAll(BOUNDARY)) {
    const [line, kind, rawLabel, closing] = match;
    const label = rawLabel.startsWith(' ') ? rawLabel.slice(1) : '';
    if (!closing || !/^[A-Z0-9 ]+$/.test(label)) throw new X509Error('malformed', `${what}: malformed ${kind} line`);
    if (kind === 'BEGIN') {
      if (open) throw new X509Error('malformed', `${what} contains a PEM block without a matching END line`);
      if (accepted && !accepted.includes(label)) {
        throw new X509Error('malformed', `${what}: expected ${accepted.join(' or ')}, found ${label}`);
      }
      if (limits.maxBlocks !== undefined && blocks.length >= limits.maxBlocks) {
        throw new X509Error('malformed', `${what} holds more than ${limits.maxBlocks} PEM blocks`);
      }
      open = { label, bodyStart: match.index + line.length };
      continue;
    }
    if (!open) throw new X509Error('malformed', `${what} contains an END line without a matching BEGIN line`);
    if (label !== open.label) throw new X509Error('malformed', `${what}: BEGIN ${open.label} is closed by END ${label}`);
    if (limits.maxBlockChars !== undefined && match.index - open.bodyStart > limits.maxBlockChars) {
      throw new X509Error('malformed', `${what} holds a PEM block longer than ${limits.maxBlockChars} characters`);
    }
    blocks.push(decodeBase64(text.slice(open.bodyStart, match.index), what));
    open = undefined;
  }
  if (open) throw new X509Error('malformed', `${what} contains a PEM block without a matching END line`);
  if (blocks.length === 0) throw new X509Error('malformed', `${what} contains no PEM block`);
  return blocks;
}

/** Exactly one DER block, from PEM or (leniently) from bare base64 without the BEGIN/END lines. */
export function parseSinglePem(text: string, labels: string | readonly string[], what: string): Uint8Array {
  if (!text.includes('-----BEGIN')) return decodeBase64(text, what);
  const blocks = parsePemBlocks(text, labels, what);
  if (blocks.length !== 1) {
    throw new X509Error('malformed', `${what} must hold exactly one PEM block, found ${blocks.length}`);
  }
  return blocks[0];
}

function decodeBase64(body: string, what: string): Uint8Array {
  const compact = body.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new X509Error('malformed', `${what} is not valid base64`);
  }
  return new Uint8Array(Buffer.from(compact, 'base64'));
}
