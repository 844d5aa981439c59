"""Small shared utilities: hashing, seeding, run-dir helpers, loggers, the Hydra task wrapper."""
