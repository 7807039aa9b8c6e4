-- Blue/green deploys and rollbacks (package deploy): one row per finished
-- flip of a service's traffic, or per cleanup of its idle color. The
-- newest row of a service says which color serves (to_color, at
-- to_version) and which one is kept for a fast rollback (from_color, at
-- from_version; none after a cleanup).
--
-- Portable SQL (PostgreSQL: INTEGER PRIMARY KEY becomes an identity
-- column).

-- +goose Up
CREATE TABLE deploys (
	id             INTEGER PRIMARY KEY,
	service        TEXT NOT NULL,
	time           TEXT NOT NULL,
	kind           TEXT NOT NULL,
	from_color     TEXT NOT NULL DEFAULT '',
	from_version   TEXT NOT NULL DEFAULT '',
	to_color       TEXT NOT NULL,
	to_version     TEXT NOT NULL,
	who            TEXT NOT NULL DEFAULT '',
	host           TEXT NOT NULL DEFAULT '',
	reason         TEXT NOT NULL DEFAULT '',
	allow_contract INTEGER NOT NULL DEFAULT 0,
	saga_id        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deploys_service_time ON deploys (service, time);
CREATE INDEX deploys_saga ON deploys (saga_id);
