-- Counting per production line: each sub-quota counts its own used and
-- spoiled units, and a reservation remembers its line ('' for none).
ALTER TABLE order_quota ADD COLUMN used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0);
ALTER TABLE order_quota ADD COLUMN spoiled INTEGER NOT NULL DEFAULT 0 CHECK (spoiled >= 0 AND used + spoiled <= count);
ALTER TABLE reservations ADD COLUMN line TEXT NOT NULL DEFAULT '';
