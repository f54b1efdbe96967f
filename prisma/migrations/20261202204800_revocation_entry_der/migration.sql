-- Each revocation has its CRL entry encoded once, when it is recorded, so that signing a CRL of any size
-- concatenates stored bytes instead of reading, parsing and encoding every row again (issue #18). A generated
-- column, so every writer gets it and existing rows are filled. encodeRevokedEntry in src/x509/crl.ts is the
-- same encoding (test/revocation/entry-der.test.ts compares them). No semicolon may appear inside a statement
-- here: the migration runner sends the script statement by statement, cut at each one.

-- The revokedCertificates entry (RFC 5280 section 5.1): SEQUENCE { userCertificate INTEGER, revocationDate Time,
-- crlEntryExtensions { reasonCode } }, the serial as a minimal positive INTEGER, UTCTime for 1950-2049 else
-- GeneralizedTime (whole seconds, UTC), no extension for reason 0 (unspecified). Declared immutable: the date
-- formats used are digits only, whatever the locale.
CREATE FUNCTION crl_entry_der(serial_hex TEXT, revoked_at TIMESTAMPTZ, reason_code INTEGER) RETURNS BYTEA
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN length(content) < 128 THEN '\x30'::bytea ELSE '\x3081'::bytea END
         || set_byte('\x00'::bytea, 0, length(content)) || content
    FROM (SELECT '\x02'::bytea || set_byte('\x00'::bytea, 0, length(integer_content)) || integer_content
                 || CASE WHEN extract(year FROM utc) BETWEEN 1950 AND 2049
                         THEN '\x170d'::bytea || convert_to(to_char(utc, 'YYMMDDHH24MISS') || 'Z', 'UTF8')
                         ELSE '\x180f'::bytea || convert_to(to_char(utc, 'YYYYMMDDHH24MISS') || 'Z', 'UTF8') END
                 || CASE WHEN reason_code = 0 THEN '\x'::bytea
                         ELSE '\x300c300a0603551d1504030a01'::bytea || set_byte('\x00'::bytea, 0, reason_code) END AS content
            FROM (SELECT CASE WHEN length(magnitude) = 0 THEN '\x00'::bytea
                              WHEN get_byte(magnitude, 0) >= 128 THEN '\x00'::bytea || magnitude
                              ELSE magnitude END AS integer_content,
                         revoked_at AT TIME ZONE 'UTC' AS utc
                    FROM (SELECT ltrim(decode(CASE WHEN length(serial_hex) % 2 = 1 THEN '0' || serial_hex ELSE serial_hex END, 'hex'),
                                       '\x00'::bytea) AS magnitude) serial) parts) entry
$$;

-- Reasons a CRL can carry: 7 is unassigned, removeFromCRL (8) belongs to delta CRLs.
ALTER TABLE "revocations" ADD CONSTRAINT "revocations_reason_code_check" CHECK ("reason_code" IN (0, 1, 2, 3, 4, 5, 6, 9, 10));

-- AlterTable
ALTER TABLE "revocations" ADD COLUMN "entry_der" BYTEA GENERATED ALWAYS AS (crl_entry_der("serial_number", "revoked_at", "reason_code")) STORED;

-- A CRL is DER full of near-identical entries: pglz compression of tens of MiB took seconds on every signing
-- (twice: the segments, then the assembled CRL), for a value read back whole each time.
ALTER TABLE "crl_segments" ALTER COLUMN "bytes" SET STORAGE EXTERNAL;
ALTER TABLE "crls" ALTER COLUMN "der" SET STORAGE EXTERNAL;
