# One image for every Switchboard process; the Deployment's command picks the process.
#
#   docker build --build-arg VERSION=1.4.0 --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     -t registry.example.internal/switchboard:1.4.0 .
#
# Build stage: the lock-synced production venv and the generated protobuf code
# (scripts/build_image_tree.sh, which tests/deploy/test_image.py runs the same way without Docker).
# Runtime stage: the slim base, that venv and /app, no compiler, no uv, pip, grpcio-tools or honcho.
# Every process runs as UID 65534 on a read-only root filesystem; it writes only to DATA_DIR
# (/var/lib/switchboard: the queue spool, SQLite) and TMPDIR (/tmp), both mounted volumes.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_NO_CACHE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
COPY scripts/build_image_tree.sh scripts/
RUN sh scripts/build_image_tree.sh venv /opt/venv
COPY protos/ protos/
COPY runtime/ runtime/
COPY services/ services/
COPY gateway/ gateway/
RUN sh scripts/build_image_tree.sh app /opt/venv /app

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.0.0+dev
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Contact-center microservices for Asterisk" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"
# The interpreter's own pip, setuptools and wheel are build tools the venv does not use.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && mkdir -p /var/lib/switchboard \
    && chown 65534:65534 /var/lib/switchboard
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATA_DIR=/var/lib/switchboard \
    SERVICE_VERSION=${VERSION} \
    SERVICE_REVISION=${GIT_COMMIT}
WORKDIR /app
USER 65534:65534
VOLUME ["/var/lib/switchboard"]
CMD ["python", "-m", "gateway"]
