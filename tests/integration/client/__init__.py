"""A typed client generated from the committed openapi.json, exercised against a real server."""
