-- Samples the daemon takes of the host (package daemon's sampler): a
-- filesystem's free bytes ("fs:<mount>"), the share of CPU time busy
-- ("cpu"), a RAPL energy counter's joules ("rapl:<zone>"). Time is Unix
-- seconds. Bounded and downsampled by catalog.SQLite.CompactSamples:
-- older than 35 days deleted, older than 2 days thinned to the first and
-- last of each series and hour.
--
-- Portable SQL (PostgreSQL: INTEGER PRIMARY KEY becomes an identity
-- column, REAL double precision).

-- +goose Up
CREATE TABLE samples (
	id     INTEGER PRIMARY KEY,
	series TEXT NOT NULL,
	time   INTEGER NOT NULL,
	value  REAL NOT NULL
);
CREATE INDEX samples_series_time ON samples (series, time);
