"""Persistence shared by the contexts.

The engine, the read pool, the unit of work, the idempotency store, and driver errors.
"""
