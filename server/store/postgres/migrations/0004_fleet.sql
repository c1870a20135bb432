-- The update service: each certified device's state in the field (from
-- its polls and signed reports) and its revocation, rollouts with their
-- counters, per-device actions with their UPK, and the signed reports.
-- Cohort membership is computed (store.InCohort), never stored.
CREATE TABLE fleet (
	device_id       TEXT PRIMARY KEY REFERENCES devices (device_id),
	version         TEXT NOT NULL DEFAULT '',
	manifest_digest BYTEA,
	last_seen       BIGINT NOT NULL DEFAULT 0,
	last_report     BIGINT NOT NULL DEFAULT 0,
	report_sequence BIGINT NOT NULL DEFAULT 0,
	result          BIGINT NOT NULL DEFAULT -1,
	detail          TEXT NOT NULL DEFAULT '',
	revoked         BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE rollouts (
	id               TEXT PRIMARY KEY,
	manifest_digest  BYTEA NOT NULL REFERENCES releases (manifest_digest),
	version          TEXT NOT NULL,
	cohort           TEXT NOT NULL,
	share            BIGINT NOT NULL CHECK (share > 0 AND share <= 10000),
	state            TEXT NOT NULL,
	max_failures     BIGINT NOT NULL,
	failures_percent BIGINT NOT NULL,
	targeted         BIGINT NOT NULL DEFAULT 0,
	downloaded       BIGINT NOT NULL DEFAULT 0,
	installed        BIGINT NOT NULL DEFAULT 0,
	failed           BIGINT NOT NULL DEFAULT 0,
	created          BIGINT NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state);

CREATE TABLE actions (
	device_id  TEXT NOT NULL REFERENCES devices (device_id),
	rollout_id TEXT NOT NULL REFERENCES rollouts (id),
	state      TEXT NOT NULL,
	upk        BYTEA,
	created    BIGINT NOT NULL,
	updated    BIGINT NOT NULL,
	PRIMARY KEY (device_id, rollout_id)
);

CREATE TABLE reports (
	device_id TEXT NOT NULL REFERENCES devices (device_id),
	sequence  BIGINT NOT NULL,
	report    BYTEA NOT NULL,
	received  BIGINT NOT NULL,
	PRIMARY KEY (device_id, sequence)
);
