"""The store: SQL, migrations and the precomputed list."""
