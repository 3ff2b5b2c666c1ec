DROP INDEX subjects_erased;
DROP TABLE legal_holds;
DROP TABLE erasures;
