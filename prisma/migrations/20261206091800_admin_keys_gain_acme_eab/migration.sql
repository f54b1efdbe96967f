-- Access keys that held the whole action catalogue before the ACME release (20261202112600_acme) were
-- administrators ("pca:*"): that release added 'pca:acme:eab' to the catalogue, and without it they could no
-- longer manage access keys or read the audit log. They gain it. Keys created after that release chose their
-- actions knowing it, and are left as they are.
-- The time of that release is in the migration history. Where the SQL is applied by hand without one, nothing
-- tells the two apart and no key is changed: the history is read through query_to_xml, as dynamic SQL, so that
-- the statement still parses when the table is absent (the migration runner splits scripts at every semicolon,
-- which rules out a DO block). The schema engine writes finished_at as a UTC time without an offset, which the
-- column reads in the session time zone: cast back to that wall time, it is taken as UTC.
UPDATE "access_keys"
SET "actions" = array_append("actions", 'pca:acme:eab')
WHERE NOT ('pca:acme:eab' = ANY ("actions"))
  AND "actions" @> ARRAY[
    'pca:ca:create', 'pca:ca:get', 'pca:ca:list', 'pca:ca:export', 'pca:ca:import', 'pca:ca:delete',
    'pca:ca:issueCert', 'pca:ca:quota', 'pca:cert:quota', 'pca:cert:get', 'pca:cert:list', 'pca:cert:export',
    'pca:cert:revoke', 'pca:cert:delete', 'pca:billing:list'
  ]::TEXT[]
  AND "created_at" < CASE
    WHEN to_regclass('_prisma_migrations') IS NOT NULL THEN (
      xpath(
        '/row/finished/text()',
        query_to_xml(
          'SELECT finished_at::TIMESTAMP AT TIME ZONE ''UTC'' AS finished FROM _prisma_migrations WHERE migration_name = ''20261202112600_acme'' AND rolled_back_at IS NULL AND finished_at IS NOT NULL',
          false, true, ''
        )
      )
    )[1]::TEXT::TIMESTAMPTZ
  END
