DROP TABLE legal_holds;
DROP TABLE erasures;
