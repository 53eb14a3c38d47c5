"""Database layer: table models, engine factories, migrations and bulk paths (no Qt)."""
