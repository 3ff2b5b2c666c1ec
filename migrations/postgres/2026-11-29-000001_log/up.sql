-- The Merkle log: identity and key, current tree state, leaves, tiles, checkpoint history.
CREATE TABLE log_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    signing_seed BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE log_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL,
    root_hash BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE leaves (
    leaf_index BIGINT PRIMARY KEY,
    leaf_hash BYTEA NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX leaves_by_hash ON leaves (leaf_hash);

CREATE TABLE tiles (
    level INTEGER NOT NULL,
    tile_index BIGINT NOT NULL,
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, tile_index)
);

CREATE TABLE checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash BYTEA NOT NULL,
    note TEXT NOT NULL,
    published_at BIGINT NOT NULL
);
