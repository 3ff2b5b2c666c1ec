-- The Merkle log: identity and key, current tree state, leaves, tiles, checkpoint history.
CREATE TABLE log_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    signing_seed BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE log_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL,
    root_hash BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);

-- INTEGER PRIMARY KEY is SQLite's rowid: leaves are stored in index order, no extra index.
CREATE TABLE leaves (
    leaf_index INTEGER PRIMARY KEY,
    leaf_hash BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX leaves_by_hash ON leaves (leaf_hash);

CREATE TABLE tiles (
    level INTEGER NOT NULL,
    tile_index BIGINT NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, tile_index)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    tree_size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
