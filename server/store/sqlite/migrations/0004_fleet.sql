-- The update service: each certified device's state in the field (from
-- its polls and signed reports) and its revocation, rollouts with their
-- counters, per-device actions with their UPK, and the signed reports.
-- Cohort membership is computed (store.InCohort), never stored.
CREATE TABLE fleet (
	device_id       TEXT PRIMARY KEY REFERENCES devices (device_id),
	version         TEXT NOT NULL DEFAULT '',
	manifest_digest BLOB,
	last_seen       INTEGER NOT NULL DEFAULT 0,
	last_report     INTEGER NOT NULL DEFAULT 0,
	report_sequence INTEGER NOT NULL DEFAULT 0,
	result          INTEGER NOT NULL DEFAULT -1,
	detail          TEXT NOT NULL DEFAULT '',
	revoked         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE rollouts (
	id               TEXT PRIMARY KEY,
	manifest_digest  BLOB NOT NULL REFERENCES releases (manifest_digest),
	version          TEXT NOT NULL,
	cohort           TEXT NOT NULL,
	share            INTEGER NOT NULL CHECK (share > 0 AND share <= 10000),
	state            TEXT NOT NULL,
	max_failures     INTEGER NOT NULL,
	failures_percent INTEGER NOT NULL,
	targeted         INTEGER NOT NULL DEFAULT 0,
	downloaded       INTEGER NOT NULL DEFAULT 0,
	installed        INTEGER NOT NULL DEFAULT 0,
	failed           INTEGER NOT NULL DEFAULT 0,
	created          INTEGER NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state);

CREATE TABLE actions (
	device_id  TEXT NOT NULL REFERENCES devices (device_id),
	rollout_id TEXT NOT NULL REFERENCES rollouts (id),
	state      TEXT NOT NULL,
	upk        BLOB,
	created    INTEGER NOT NULL,
	updated    INTEGER NOT NULL,
	PRIMARY KEY (device_id, rollout_id)
);

CREATE TABLE reports (
	device_id TEXT NOT NULL REFERENCES devices (device_id),
	sequence  INTEGER NOT NULL,
	report    BLOB NOT NULL,
	received  INTEGER NOT NULL,
	PRIMARY KEY (device_id, sequence)
);
