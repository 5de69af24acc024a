-- A datasource's source password is never stored: `source_password` holds
-- where it comes from (`keyring:NAME`, `env:VAR` or `profile`).
ALTER TABLE datasources ADD COLUMN IF NOT EXISTS source_password TEXT;
