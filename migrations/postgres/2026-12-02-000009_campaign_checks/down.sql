DROP TABLE campaign_checks;
