"""The OpenAPI document as committed at the repository's root (``openapi.json``).

``make openapi`` writes it; ``tests/unit/test_openapi_document.py`` fails when it is not what
the app serves, so a change to the API shows up in review as a change to the document.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from library.bootstrap.app import create_app
from shared.settings import Settings
from tools import devauth

# Building the app opens no connection: the URL is only a placeholder.
_NO_DATABASE = "postgresql+asyncpg://openapi@localhost/openapi"


def openapi_text() -> str:
    """The app's OpenAPI document as JSON text (indented, ending with a newline)."""
    # The document of a production server: token verification on (with a throwaway key: the
    # document names the scheme and the scopes, never a key).
    with tempfile.TemporaryDirectory(prefix="library-openapi-") as folder:
        key = devauth.new_key_pair(Path(folder))
        settings = Settings(
            database_url=_NO_DATABASE,
            log_format="json",
            auth_jwks_file=key.jwks_file,
            auth_issuer="https://issuer.invalid/",
            auth_audience="library",
        )
        app = create_app(settings)
        return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write the document to the path given (default ``openapi.json``)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "openapi.json")
    target.write_text(openapi_text(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
