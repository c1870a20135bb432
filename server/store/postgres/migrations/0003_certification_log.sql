-- The station flow: certified devices, the audit log (RFC 6962 tree in
-- tlog's stored-hash layout), published releases, the certified count
-- of each order, and the station that made each reservation.
ALTER TABLE counters ADD COLUMN certified BIGINT NOT NULL DEFAULT 0 CHECK (certified >= 0);
UPDATE counters SET certified = (SELECT COUNT(*) FROM reservations r
	WHERE r.order_id = counters.order_id AND r.state = 'committed');
ALTER TABLE reservations ADD COLUMN station BYTEA NOT NULL DEFAULT ''::bytea;
CREATE INDEX reservations_state ON reservations (state, created);

CREATE TABLE devices (
	device_id   TEXT PRIMARY KEY REFERENCES reservations (device_id),
	order_id    TEXT NOT NULL REFERENCES orders (id),
	station     BYTEA NOT NULL,
	certificate BYTEA NOT NULL,
	upk         BYTEA,
	log_index   BIGINT NOT NULL,
	created     BIGINT NOT NULL
);

CREATE TABLE log_head (
	id   BIGINT PRIMARY KEY CHECK (id = 1),
	size BIGINT NOT NULL CHECK (size >= 0)
);
INSERT INTO log_head (id, size) VALUES (1, 0);
CREATE TABLE log_records (
	idx        BIGINT PRIMARY KEY,
	entry      BYTEA NOT NULL,
	checkpoint BYTEA NOT NULL
);
CREATE TABLE log_hashes (
	idx  BIGINT PRIMARY KEY,
	hash BYTEA NOT NULL
);

CREATE TABLE releases (
	manifest_digest  BYTEA PRIMARY KEY,
	version          TEXT NOT NULL,
	security_counter BIGINT NOT NULL,
	package          BYTEA NOT NULL,
	created          BIGINT NOT NULL
);
