-- What the station measured of a device it provisioned (its board and the
-- SBM region's SHA-256), kept with the certificate for the production
-- records the OEM takes from the service.
ALTER TABLE devices ADD COLUMN board TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN sbm_measurement TEXT NOT NULL DEFAULT '';
