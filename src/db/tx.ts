/** The transaction types every data-access function takes. */
import type { Db } from './database.ts';

/** The Prisma transaction client handed to `prisma.$transaction(async (tx) => ...)`. */
export type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

/** Either the client or a transaction: for reads that may run inside or outside one. */
export type Reader = Db | Tx;
