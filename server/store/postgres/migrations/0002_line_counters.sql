-- Counting per production line: each sub-quota counts its own used and
-- spoiled units, and a reservation remembers its line ('' for none).
ALTER TABLE order_quota ADD COLUMN used BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_quota ADD COLUMN spoiled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE order_quota ADD CONSTRAINT order_quota_counts CHECK (used >= 0 AND spoiled >= 0 AND used + spoiled <= count);
ALTER TABLE reservations ADD COLUMN line TEXT NOT NULL DEFAULT '';
