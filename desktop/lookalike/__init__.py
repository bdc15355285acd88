"""Lookalike: find photos by likeness."""

__version__ = "0.1.0"
APP_NAME = "Lookalike"
APP_ID = "io.github.lookalike.Lookalike"
