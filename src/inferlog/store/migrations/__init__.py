"""Versioned schema migrations, one list per backend; each store applies the ones it has not yet.

A migration is never edited once released: a change is a new, higher version. The applied versions
are kept in a ``_migrations`` table, so an old database upgrades in place on open.
"""
