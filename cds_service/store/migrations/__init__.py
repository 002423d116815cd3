"""Alembic migrations of the audit store, shipped inside the package (`cytokine-cds db upgrade`)."""
