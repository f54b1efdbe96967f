/** Values for the nullable Json columns (name constraints, issuance policy): Prisma writes SQL NULL only for DbNull. */
import { Prisma } from '../db/generated/client.ts';

export const jsonOrNull = (value: object | null | undefined): Prisma.InputJsonValue | typeof Prisma.DbNull =>
  value === null || value === undefined ? Prisma.DbNull : (value as Prisma.InputJsonValue);
