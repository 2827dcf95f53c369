# The saas example server. Build: docker build -t saas-server .
# Run:   docker run -p 8000:8000 -e SECRET_KEY=$(openssl rand -hex 32) -v saas-data:/app/data saas-server
# With PostgreSQL and a separate worker: docker compose up --build (docker-compose.yml).

FROM rust:1.95-bookworm AS builder
WORKDIR /src

# 1. Dependencies only, cached until a manifest or the lock file changes:
#    the workspace's manifests with empty sources, built --locked.
COPY Cargo.toml Cargo.lock ./
# The workspace's build settings (LIBSQLITE3_FLAGS for the bundled SQLite).
COPY .cargo .cargo
COPY saas-core/Cargo.toml saas-core/
COPY saas-store-sqlite/Cargo.toml saas-store-sqlite/
COPY saas-store-postgres/Cargo.toml saas-store-postgres/
COPY saas-http/Cargo.toml saas-http/
COPY examples/saas-server/Cargo.toml examples/saas-server/
COPY examples/saas-bench/Cargo.toml examples/saas-bench/
COPY examples/embed/Cargo.toml examples/embed/
COPY tests/Cargo.toml tests/
RUN for crate in saas-core saas-store-sqlite saas-store-postgres saas-http \
                 examples/saas-server examples/saas-bench examples/embed tests; do \
      mkdir -p "$crate/src" && echo '//! placeholder' > "$crate/src/lib.rs"; \
    done \
 && for bin in examples/saas-server examples/saas-bench examples/embed; do \
      echo 'fn main() {}' > "$bin/src/main.rs"; \
    done \
 && cargo build --release --locked -p saas-server --bin saas-server \
 && rm -rf saas-core/src saas-store-sqlite/src saas-store-postgres/src saas-http/src \
           examples/*/src tests/src

# 2. The workspace's sources (.dockerignore keeps out target directories,
#    local data and secrets).
COPY saas-core saas-core
COPY saas-store-sqlite saas-store-sqlite
COPY saas-store-postgres saas-store-postgres
COPY saas-http saas-http
COPY examples examples
COPY tests tests
# Newer than the placeholders' build, so cargo rebuilds the workspace's crates.
RUN find saas-core saas-store-sqlite saas-store-postgres saas-http examples tests \
         -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p saas-server --bin saas-server \
 && cp target/release/saas-server /usr/local/bin/saas-server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --create-home saas \
 && mkdir -p /app/data && chown saas:saas /app/data
COPY --from=builder /usr/local/bin/saas-server /usr/local/bin/saas-server
COPY LICENSE-MIT LICENSE-APACHE /usr/share/doc/saas-server/
USER saas
WORKDIR /app
ENV BIND=0.0.0.0:8000 \
    DATA_DIR=/app/data \
    ALLOWED_HOSTS=*
VOLUME ["/app/data"]
EXPOSE 8000
# The binary checks itself: GET /api/health/ on BIND (no curl needed).
# The worker service of docker-compose.yml overrides this with `healthcheck --worker`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["saas-server", "healthcheck"]
# SIGTERM stops it gracefully (requests drained, unfinished jobs given back).
STOPSIGNAL SIGTERM
ENTRYPOINT ["saas-server"]
CMD ["serve"]
