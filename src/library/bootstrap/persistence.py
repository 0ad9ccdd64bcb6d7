"""Every context's persistence models, so that one metadata describes the whole database."""

from library.authors.infrastructure import models as authors_models
from library.books.infrastructure import models as books_models
from shared.persistence import idempotency_store as idempotency_models
from shared.persistence import outbox as outbox_models
from shared.persistence.db import Base

metadata = Base.metadata

__all__ = ["authors_models", "books_models", "idempotency_models", "metadata", "outbox_models"]
