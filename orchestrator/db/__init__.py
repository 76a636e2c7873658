"""The database: typed models, the engine, and the schema Alembic owns."""
