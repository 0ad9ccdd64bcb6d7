"""The change feed: the catalog's domain events, in commit order, for consumers.

Neither authors nor books: it reads the outbox both write (shared.persistence.outbox) and
knows no context's model, so it is a sibling of theirs, independent of both.
"""
