-- The first schema of the OEM service: production orders, their per-line
-- sub-quotas, stations, and the exact counters with one reservation per
-- device. Times are Unix nanoseconds.
CREATE TABLE orders (
	id        TEXT PRIMARY KEY,
	signed    BLOB NOT NULL,
	vendor_id TEXT NOT NULL,
	class_id  TEXT NOT NULL,
	count     INTEGER NOT NULL CHECK (count > 0),
	not_after INTEGER NOT NULL,
	state     TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
	created   INTEGER NOT NULL
);

CREATE TABLE order_quota (
	order_id TEXT NOT NULL REFERENCES orders (id),
	line     TEXT NOT NULL,
	count    INTEGER NOT NULL CHECK (count >= 0),
	PRIMARY KEY (order_id, line)
);

CREATE TABLE stations (
	name        TEXT PRIMARY KEY,
	cert_digest BLOB NOT NULL,
	created     INTEGER NOT NULL
);

CREATE TABLE counters (
	order_id TEXT PRIMARY KEY REFERENCES orders (id),
	count    INTEGER NOT NULL,
	used     INTEGER NOT NULL DEFAULT 0,
	spoiled  INTEGER NOT NULL DEFAULT 0,
	CHECK (used >= 0 AND spoiled >= 0 AND used + spoiled <= count)
);

CREATE TABLE reservations (
	device_id TEXT PRIMARY KEY,
	order_id  TEXT NOT NULL REFERENCES orders (id),
	state     TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'spoiled')),
	created   INTEGER NOT NULL
);
CREATE INDEX reservations_order ON reservations (order_id);
