"""Import and export of whole catalogs: the one home of ``library import`` and ``library export``.

- ``importer``: the import use case (``BookImporter``: drafts in, the same rules as the API),
  with the records both directions share (``BookDraft``, ``ExportedBook``);
- ``goodbooks``: reads a goodbooks-10k ``books.csv`` into drafts;
- ``catalog_format``: the catalog's own export format (JSON Lines, CSV), written and read back;
- ``runner``: drives a file's rows through the importer in batches, and writes the report;
- ``export_query``: the whole catalog as export records, from one snapshot.

The commands themselves (arguments, wiring from the root container, progress) are
``library.cli.import_catalog`` and ``library.cli.export_catalog``. import-linter's
``interchange-layers`` contract keeps the importer below the formats and the runner, and
``pure-core`` keeps it free of frameworks, as the application layer is.
"""
