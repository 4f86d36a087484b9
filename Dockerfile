# syntax=docker/dockerfile:1
# ferromq: one image for `ferromq serve`, `ferromq controller` and `ferromq crdgen`.
#   docker build -t REGISTRY/ferromq:0.1.0 .

ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The other members of the workspace (the test fixtures, the benchmark): cargo loads the
# workspace before it builds.
COPY tests/common ./tests/common
COPY bench/Cargo.toml ./bench/Cargo.toml
COPY bench/src ./bench/src
# The cache mounts keep the crate registry and the target folder between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ferromq \
    && cp target/release/ferromq /usr/local/bin/ferromq

# glibc, libgcc and CA certificates, no shell; runs as uid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/ferromq /usr/local/bin/ferromq
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/ferromq"]
CMD ["serve"]
