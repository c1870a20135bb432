-- The station flow: certified devices, the audit log (RFC 6962 tree in
-- tlog's stored-hash layout), published releases, the certified count
-- of each order, and the station that made each reservation.
ALTER TABLE counters ADD COLUMN certified INTEGER NOT NULL DEFAULT 0 CHECK (certified >= 0);
UPDATE counters SET certified = (SELECT COUNT(*) FROM reservations r
	WHERE r.order_id = counters.order_id AND r.state = 'committed');
ALTER TABLE reservations ADD COLUMN station BLOB NOT NULL DEFAULT x'';
CREATE INDEX reservations_state ON reservations (state, created);

CREATE TABLE devices (
	device_id   TEXT PRIMARY KEY REFERENCES reservations (device_id),
	order_id    TEXT NOT NULL REFERENCES orders (id),
	station     BLOB NOT NULL,
	certificate BLOB NOT NULL,
	upk         BLOB,
	log_index   INTEGER NOT NULL,
	created     INTEGER NOT NULL
);

CREATE TABLE log_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL CHECK (size >= 0)
);
INSERT INTO log_head (id, size) VALUES (1, 0);
CREATE TABLE log_records (
	idx        INTEGER PRIMARY KEY,
	entry      BLOB NOT NULL,
	checkpoint BLOB NOT NULL
);
CREATE TABLE log_hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
);

CREATE TABLE releases (
	manifest_digest  BLOB PRIMARY KEY,
	version          TEXT NOT NULL,
	security_counter INTEGER NOT NULL,
	package          BLOB NOT NULL,
	created          INTEGER NOT NULL
);
