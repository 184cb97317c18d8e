DROP TABLE org_two_factor_policies;
