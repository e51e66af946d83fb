# syntax=docker/dockerfile:1
# mcp-gateway image: locked release build, smoke-tested, on a slim non-root runtime.
# The same build and smoke steps run natively in CI via scripts/docker-steps.sh.

FROM rust:1.95-slim-bookworm AS builder
# Pingora builds zlib-ng with cmake; rustls needs no system TLS library.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY benches ./benches
COPY examples ./examples
COPY conf ./conf
RUN cargo build --release --locked --bin mcp-gateway \
 && ./target/release/mcp-gateway --version \
 && ./target/release/mcp-gateway -t -c conf/container.yaml

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mcpgw
COPY --from=builder /src/target/release/mcp-gateway /usr/local/bin/mcp-gateway
COPY conf/container.yaml /etc/mcp-gateway/gateway.yaml
RUN /usr/local/bin/mcp-gateway --version
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/mcp-gateway", "-c", "/etc/mcp-gateway/gateway.yaml"]
