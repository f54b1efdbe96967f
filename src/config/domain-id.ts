/** A tenant's id as configuration and tokens carry it: 1-64 characters, no whitespace and no ':' (a URN's separator). */
export function isDomainId(value: string): boolean {
  return /^[^:\s]{1,64}$/.test(value);
}
