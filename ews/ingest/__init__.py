"""Edge in: readers and fetchers for every source (files, folders, URLs)."""
