"""HTTP edges shared by the contexts: problem+json, conditional requests, middleware, limits."""
