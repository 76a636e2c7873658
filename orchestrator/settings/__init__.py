"""Settings: the bootstrap defaults file, the database copy and environment overrides."""
