"""The database: models, migrations and every SQL statement ashbox runs."""
