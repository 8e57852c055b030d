import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Migrator, type Kysely, type MigrationResultSet } from 'kysely';
import path from 'node:path';

/** The repository's `migrations/` folder (works from `src/` under tsx and from `dist/src/`). */
export async function migrationsFolder(): Promise<string> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const candidate of [path.resolve(here, '../../migrations'), path.resolve(here, '../../../migrations')]) {
    try {
      await fs.access(candidate);
      return candidate;
    } catch {
      // try the next layout
    }
  }
  throw new Error('migrations folder not found');
}

/** kysely Migrator over `migrations/YYYYMMDDHHMMSS_name.ts`. */
export async function createMigrator(db: Kysely<any>): Promise<Migrator> {
  const migrationFolder = await migrationsFolder();
  return new Migrator({ db, provider: new FileMigrationProvider({ fs, path, migrationFolder }) });
}

function unwrap(result: MigrationResultSet): MigrationResultSet {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(failed ? `migration ${failed.migrationName} failed` : 'migrations could not run', { cause: result.error });
  }
  return result;
}

/** Applies every pending migration; throws on the first failure. */
export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  return unwrap(await (await createMigrator(db)).migrateToLatest());
}

/** Reverts every applied migration, newest first. */
export async function migrateDownAll(db: Kysely<any>): Promise<void> {
  const migrator = await createMigrator(db);
  for (;;) {
    const result = unwrap(await migrator.migrateDown());
    if (!result.results || result.results.length === 0) return;
  }
}
