"""Edge: what ews keeps on disk (artifacts written atomically; the database comes with the ledger)."""
