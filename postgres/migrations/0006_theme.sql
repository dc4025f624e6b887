-- A property's look on the hosted sign-in pages (logo URL and two colours),
-- as a JSON object validated by the property rules; the same column as
-- SQLite's 0006_theme.sql. Numbered 0006 to stay clear of migrations other
-- branches add meanwhile.

ALTER TABLE properties ADD COLUMN theme jsonb NOT NULL DEFAULT '{}';
