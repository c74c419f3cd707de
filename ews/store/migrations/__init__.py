"""Alembic migrations of the ews database (run by :func:`ews.store.db.open_store`)."""
