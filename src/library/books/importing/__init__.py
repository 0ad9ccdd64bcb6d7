"""Driving adapters that feed other catalogs' exports to the books' import use case."""
