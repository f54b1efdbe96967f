/** `npm run db:new-migration -- NAME`: writes prisma/migrations/<timestamp>_NAME from prisma/schema.prisma. */
import { createMigration } from '../src/db/migrate.ts';

async function main(): Promise<number> {
  const name = process.argv[2];
  if (!name) {
    console.error('usage: db-new-migration NAME');
    return 2;
  }
  const folder = await createMigration(name);
  console.log(folder ? `created ${folder}/migration.sql` : 'schema and migrations agree: nothing to create');
  return 0;
}

// The WASM engine keeps the event loop busy for a while after its work: leave explicitly.
main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
