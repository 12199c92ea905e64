"""Persistence: models, engine, migrations and checks. SQLite-only SQL lives in this package."""
