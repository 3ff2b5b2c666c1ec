DROP TABLE regulator_reads;
