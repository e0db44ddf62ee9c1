"""Numbered SQL migrations, applied in order by ``thothbot.store.migrate``."""
