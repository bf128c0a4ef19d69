"""Shared plumbing: configuration, database, cache, security, errors. Imports no app."""
