-- 送信責任者: the party responsible for sending, when it is not the sender itself (ordinance
-- Art. 8–9); the display notice names both.
ALTER TABLE tenants ADD COLUMN responsible_party TEXT;
-- Each purpose's label as recipients read it, in Japanese and English (NULL: its description).
ALTER TABLE tenant_purposes ADD COLUMN label_ja TEXT;
ALTER TABLE tenant_purposes ADD COLUMN label_en TEXT;
-- The `collection_point_retired` leaf that ended a version's period of use (its time is
-- superseded_at), NULL while it is in use.
ALTER TABLE collection_points ADD COLUMN retired_leaf_index BIGINT;
-- Versions ended by the old rule (a new version of the same name) have no retirement leaf: the
-- log says they are in use, so the rows say so too, until they are retired.
UPDATE collection_points SET superseded_at = NULL WHERE retired_leaf_index IS NULL;
