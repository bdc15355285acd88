"""The catalog's schema: every feature's numbered migration, in one place the catalog reads."""
