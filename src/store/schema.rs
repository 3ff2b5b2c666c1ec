//! The diesel schema shared by both backends (column types that exist in SQLite and PostgreSQL).

diesel::table! {
    /// The log's identity: its origin and the Ed25519 seed that signs its checkpoints.
    log_meta (id) {
        id -> Integer,
        origin -> Text,
        signing_seed -> Binary,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// The durable tree state: size and root after the last committed batch.
    log_state (id) {
        id -> Integer,
        tree_size -> BigInt,
        root_hash -> Binary,
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// Every leaf: its index, RFC 9162 leaf hash and canonical bytes.
    leaves (leaf_index) {
        leaf_index -> BigInt,
        leaf_hash -> Binary,
        data -> Binary,
    }
}

diesel::table! {
    /// C2SP hash tiles (height 8): up to 256 concatenated hashes per (level, index).
    tiles (level, tile_index) {
        level -> Integer,
        tile_index -> BigInt,
        hashes -> Binary,
    }
}

diesel::table! {
    /// Every published checkpoint, one per tree size.
    checkpoints (tree_size) {
        tree_size -> BigInt,
        root_hash -> Binary,
        note -> Text,
        published_at -> BigInt,
    }
}

diesel::table! {
    /// Ed25519 keys that sign bearer tokens; `kid` is the JWT header's key id.
    auth_keys (kid) {
        kid -> Text,
        seed -> Binary,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}
