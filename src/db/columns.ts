/**
 * Prisma field names and their columns: every @map in prisma/schema.prisma is the field name in snake_case, so raw
 * statements can write rows given by field and read rows back as the model's shape.
 */

const columns = new Map<string, string>();

export function columnOf(field: string): string {
  let column = columns.get(field);
  if (column === undefined) {
    column = field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    columns.set(field, column);
  }
  return column;
}

const fields = new Map<string, string>();

function fieldOf(column: string): string {
  let field = fields.get(column);
  if (field === undefined) {
    field = column.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
    fields.set(column, field);
  }
  return field;
}

/**
 * A raw row keyed by field names. `bigints` names the BigInt fields: pg returns int8 as text, PGlite through Prisma
 * as a bigint; Prisma's model type has a bigint. Every other column type arrives as the model has it (bytea as a
 * Uint8Array or Buffer, timestamptz as a Date, json parsed, text[] an array).
 */
export function rowOfColumns<Row>(raw: Record<string, unknown>, bigints: readonly string[] = []): Row {
  const row: Record<string, unknown> = {};
  for (const column in raw) row[fieldOf(column)] = raw[column];
  for (const field of bigints) if (row[field] !== null && row[field] !== undefined) row[field] = BigInt(row[field] as string | bigint);
  return row as Row;
}
