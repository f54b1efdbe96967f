import { strToU8, zipSync } from 'fflate';

/** A fixed modification time keeps the archive a function of its contents alone. */
const MODIFIED_AT = new Date(2000, 0, 1);

/** A deflated zip of the files, in the given order; strings are stored as UTF-8. */
export function zipFiles(files: Record<string, Uint8Array | string>): Uint8Array {
  const entries = Object.entries(files).map(([name, content]) => [name, typeof content === 'string' ? strToU8(content) : content]);
  return zipSync(Object.fromEntries(entries), { mtime: MODIFIED_AT });
}
