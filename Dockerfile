# The saas example server. Build: docker build -t saas-server .
# Run:   docker run -p 8000:8000 -e SECRET_KEY=$(openssl rand -hex 32) -v saas-data:/app/data saas-server

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only the workspace's sources: no target directories or local data in the context.
COPY Cargo.toml Cargo.lock ./
COPY saas-core saas-core
COPY saas-store-sqlite saas-store-sqlite
COPY saas-store-postgres saas-store-postgres
COPY saas-http saas-http
COPY examples examples
COPY tests tests
RUN cargo build --release -p saas-server --bin saas-server \
 && cp target/release/saas-server /usr/local/bin/saas-server

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --create-home saas \
 && mkdir -p /app/data && chown saas:saas /app/data
COPY --from=builder /usr/local/bin/saas-server /usr/local/bin/saas-server
USER saas
WORKDIR /app
ENV BIND=0.0.0.0:8000 \
    DATA_DIR=/app/data \
    ALLOWED_HOSTS=*
VOLUME ["/app/data"]
EXPOSE 8000
ENTRYPOINT ["saas-server"]
CMD ["serve"]
