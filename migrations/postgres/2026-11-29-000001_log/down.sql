DROP TABLE checkpoints;
DROP TABLE tiles;
DROP TABLE leaves;
DROP TABLE log_state;
DROP TABLE log_meta;
