/**
 * A case-insensitive substring filter on a text column. Prisma's `contains` becomes ILIKE '%value%' without escaping
 * the value, whose own % and _ would then match anything: they, and LIKE's escape character \, are escaped first.
 */
export function containsText(text: string): { contains: string; mode: 'insensitive' } {
  return { contains: text.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' };
}
