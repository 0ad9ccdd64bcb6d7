# The library service: a two-stage build with uv.
#
#   docker build -t library .
#   docker run --rm -e DATABASE_URL=... library library migrate   # migrations: their own command
#   docker run --rm -e DATABASE_URL=... -p 8000:8000 library      # the API (never migrates)
#
# The builder resolves nothing: it installs exactly what uv.lock says (--locked: the build
# fails if uv.lock is out of date with pyproject.toml), the project itself as a regular
# wheel (--no-editable), so the runtime stage needs only the virtual environment,
# alembic.ini and migrations/, and neither uv nor the source tree.
# Needs BuildKit (the default builder since Docker 23) for the cache mounts; no `# syntax=`
# line, so that the engine's built-in Dockerfile frontend serves and nothing is pulled for it.
#
# The base images are build arguments; the defaults are the official ones. Offline, build
# equivalents from Debian's and PyPI's packages with scripts/images.sh, which passes them:
#   --build-arg PYTHON_IMAGE=local/python:3.11-bookworm --build-arg UV_IMAGE=local/uv:0.13.9

# Builder and runtime must be the same image: the venv's interpreter symlinks point at the
# image's python3 (/usr/local/bin/python3.12 in the official image, /usr/bin/python3.11 in
# Debian's), which has to exist, at that path, in both stages.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# uv comes from Astral's official distroless image, pinned to a release. Copying the static
# binary is what the uv Docker guide recommends: no pip, no extra layer of uv's own Python
# package, and the version is fixed here in one place. It must be at least as new as the uv
# that wrote uv.lock (lock revision 5). Any image with /uv and /uvx serves (the local one
# holds the binaries of uv's PyPI wheel). A stage alias (rather than COPY --from=<image>)
# keeps the pin visible at the top and hadolint happy (DL3022).
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
FROM ${UV_IMAGE} AS uv


FROM ${PYTHON_IMAGE} AS builder

COPY --from=uv /uv /uvx /bin/

# UV_COMPILE_BYTECODE: ship .pyc files, for a faster start.
# UV_LINK_MODE=copy: the uv cache is a cache mount (another filesystem), so hard links fail.
# UV_PYTHON_DOWNLOADS=never: build the venv on the image's own Python, the one the runtime
# stage has too; a uv-managed Python would not exist there.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never

WORKDIR /app

# The dependencies first, in their own layer: it is rebuilt only when the lock changes.
# (README.md is the project's readme in pyproject.toml; the build of the project reads it.)
# --no-default-groups: runtime dependencies only. pyproject's default-groups (dev and bench,
# for contributors) would otherwise ship; --no-dev alone drops only dev.
# tests/unit/test_image_requirements.py exports the set these flags install and checks it.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-install-project

# Then the project, installed as a wheel into the same venv.
COPY src/ src/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-editable


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="library" \
      org.opencontainers.image.description="A REST service for a book catalog: authors and books, on async PostgreSQL." \
      org.opencontainers.image.licenses="MIT"

# A fixed, non-root uid/gid (10001), outside the range of the base image's system users.
# --no-log-init: a high uid would otherwise make useradd write a huge sparse /var/log/lastlog.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-log-init --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app

# Owned by root and read-only to the service: the process cannot rewrite its own code.
COPY --from=builder /app/.venv /app/.venv
COPY alembic.ini ./
COPY migrations/ migrations/

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIBRARY_HOST=0.0.0.0 \
    LIBRARY_PORT=8000 \
    LIBRARY_LOG_FORMAT=json

USER 10001:10001

EXPOSE 8000

# Liveness only (/health/live), not readiness: a database outage must not get the container
# killed and restarted. The slim image has no curl, so the probe is Python's urllib; urlopen
# raises on connection errors and on any non-2xx status, which makes the exit status 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('LIBRARY_PORT', '8000'), timeout=4)"]

# Serves the API only. Migrations are a separate, explicit step: `docker run IMAGE library migrate`.
CMD ["library", "serve"]
