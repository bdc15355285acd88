"""Queries: the query language (parse, model, embed), browsing and filters, answers."""
