"""Publishing the domain events to an external broker (optional: LIBRARY_EVENTS_NATS_URL)."""
