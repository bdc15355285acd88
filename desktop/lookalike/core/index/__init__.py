"""Indexing: scan -> plan -> decode pool -> stages -> commit; the folder watcher; decoding photos."""
