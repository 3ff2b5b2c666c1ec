-- Witnesses' cosignatures (C2SP tlog-cosignature) of published checkpoints: one signature line
-- per witness and checkpoint, appended to the checkpoint's note when it is served.
CREATE TABLE cosignatures (
    tree_size BIGINT NOT NULL REFERENCES checkpoints (tree_size),
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tree_size, witness)
);
CREATE INDEX cosignatures_by_witness ON cosignatures (witness, tree_size);
