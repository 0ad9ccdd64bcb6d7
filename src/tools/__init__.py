"""Development and benchmark tooling, kept out of the service.

- ``devdb``: the embedded PostgreSQL's lifecycle (``make run``, the tests, the benchmarks);
- ``devauth``: the development signing key and the tokens it signs (``library token``);
- ``seed``: the catalog generator (``library seed``, the benchmarks' catalogs);
- ``openapi``: writes the committed ``openapi.json`` (``make openapi``).

The service (``library.authors``, ``library.books``, ``library.changes``, ``library.bootstrap``
and ``shared``) never imports this package: import-linter's ``service-without-tools`` contract
holds it. The CLI (``library.cli``) may: it is the tools' entry point.
"""
