"""Corpora used in the course: getting them, loading them and splitting them."""
