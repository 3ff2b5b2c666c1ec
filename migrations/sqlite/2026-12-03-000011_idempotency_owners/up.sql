-- The process that holds an in-flight reservation (its owner lock: store/owner.rs), so another
-- process can take the reservation over at once when its owner is gone. NULL for reservations
-- made before, or by a process that could take no lock (they fall back to the timeout).
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
