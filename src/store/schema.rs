//! The diesel schema shared by both backends (column types that exist in SQLite and PostgreSQL).

diesel::table! {
    /// The log's identity: its origin and the Ed25519 seed that signs its checkpoints.
    log_meta (id) {
        id -> Integer,
        origin -> Text,
        signing_seed -> Binary,
        created_at -> BigInt,
        vrf_secret -> Nullable<Binary>,
        parameters_leaf -> Nullable<BigInt>,
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

diesel::table! {
    /// Bearer tokens the service issued (the JWT's `jti` is the id; the secret is not stored).
    api_tokens (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        tenant_id -> Nullable<Text>,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        parent_id -> Nullable<Text>,
    }
}

diesel::table! {
    /// Sender organisations and the profile the display duty needs.
    tenants (id) {
        id -> Text,
        name -> Text,
        legal_name -> Text,
        postal_address -> Nullable<Text>,
        complaint_contact -> Nullable<Text>,
        optout_contact -> Nullable<Text>,
        default_language -> Text,
        legal_hold -> Bool,
        created_at -> BigInt,
        responsible_party -> Nullable<Text>,
        phone -> Nullable<Text>,
        privacy_policy_url -> Nullable<Text>,
    }
}

diesel::table! {
    /// The purposes a tenant mails for.
    tenant_purposes (tenant_id, purpose) {
        tenant_id -> Text,
        purpose -> Text,
        description -> Text,
        created_at -> BigInt,
        label_ja -> Nullable<Text>,
        label_en -> Nullable<Text>,
    }
}

diesel::table! {
    /// One address of one tenant: plaintext and salt (erasable) and its commitment.
    subjects (id) {
        id -> Text,
        tenant_id -> Text,
        address -> Nullable<Text>,
        salt -> Nullable<Binary>,
        commitment -> Binary,
        last_leaf_index -> Nullable<BigInt>,
        created_at -> BigInt,
        erased_at -> Nullable<BigInt>,
        vrf -> Bool,
    }
}

diesel::table! {
    /// Registered consent screens, forms and templates, content-addressed.
    collection_points (tenant_id, id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        channel -> Text,
        content_type -> Text,
        content -> Binary,
        sender_name_shown -> Text,
        prechecked -> Bool,
        language -> Text,
        leaf_index -> BigInt,
        registered_at -> BigInt,
        superseded_at -> Nullable<BigInt>,
        retired_leaf_index -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Consent events; each is one leaf.
    events (id) {
        id -> Text,
        tenant_id -> Text,
        subject_id -> Text,
        kind -> Text,
        purposes -> Text,
        basis -> Text,
        method -> Text,
        collection_point -> Nullable<Text>,
        received_by -> Text,
        occurred_at -> BigInt,
        recorded_at -> BigInt,
        leaf_index -> BigInt,
        prev_leaf_index -> Nullable<BigInt>,
        confirmation_required -> Bool,
        evidence -> Nullable<Text>,
    }
}

diesel::table! {
    /// The latest effect per subject and purpose (`*` = all purposes): the send decision.
    consent_state (subject_id, purpose) {
        subject_id -> Text,
        purpose -> Text,
        status -> Text,
        basis -> Text,
        since -> BigInt,
        event_id -> Text,
        leaf_index -> BigInt,
        occurred_at -> BigInt,
    }
}

diesel::table! {
    /// First answers to requests sent with an Idempotency-Key, replayed on retry.
    idempotency_keys (tenant_id, key) {
        tenant_id -> Text,
        key -> Text,
        request_sha256 -> Binary,
        status -> Integer,
        body -> Nullable<Text>,
        created_at -> BigInt,
        owner -> Nullable<Text>,
    }
}

diesel::joinable!(events -> subjects (subject_id));
diesel::allow_tables_to_appear_in_same_query!(
    subjects,
    events,
    consent_state,
    tenants,
    tenant_purposes,
    collection_points
);

diesel::table! {
    /// Reads of consent records by regulators.
    regulator_reads (id) {
        id -> Text,
        tenant_id -> Text,
        regulator -> Text,
        operation -> Text,
        read_at -> BigInt,
    }
}

diesel::table! {
    /// Publishable keys of browser signup forms.
    publishable_keys (id) {
        id -> Text,
        tenant_id -> Text,
        origins -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Tenants' opt-out webhook endpoints.
    webhooks (id) {
        id -> Text,
        tenant_id -> Text,
        url -> Text,
        secret -> Binary,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        events -> Text,
        previous_secret -> Nullable<Binary>,
        previous_secret_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The outbox and delivery log of opt-out webhooks.
    webhook_deliveries (id) {
        id -> Text,
        webhook_id -> Text,
        subject_id -> Text,
        event_id -> Text,
        body -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Nullable<BigInt>,
        delivered_at -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Witnesses' cosignature lines of published checkpoints.
    cosignatures (tree_size, witness) {
        tree_size -> BigInt,
        witness -> Text,
        line -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    /// Recorded campaign checks: each beside its `campaign_check` leaf, with the entries whose
    /// root the leaf holds.
    campaign_checks (id) {
        id -> Text,
        tenant_id -> Text,
        purpose -> Text,
        leaf_index -> BigInt,
        recorded_at -> BigInt,
        addresses -> BigInt,
        root -> Text,
        entries -> Binary,
    }
}

diesel::table! {
    /// Erasures: each beside its `erasure` leaf.
    erasures (leaf_index) {
        leaf_index -> BigInt,
        tenant_id -> Text,
        subject_id -> Text,
        recorded_at -> BigInt,
    }
}

diesel::table! {
    /// Legal holds put on and lifted: each beside its `legal_hold` leaf.
    legal_holds (leaf_index) {
        leaf_index -> BigInt,
        tenant_id -> Text,
        hold_on -> Bool,
        order_date -> Text,
        order_reference -> Text,
        recorded_at -> BigInt,
    }
}
