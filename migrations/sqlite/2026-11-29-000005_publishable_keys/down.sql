DROP TABLE publishable_keys;
