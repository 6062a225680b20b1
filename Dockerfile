# syntax=docker/dockerfile:1
# quantrec serve: a multi-stage build — the Rust toolchain builds the binary, a distroless
# runtime (glibc + libgcc, no shell, uid 65532) runs it. Build from the repository root:
#   docker build -t quantrec:dev .
# The model repository is mounted at /models (see deploy/).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache the registry and the target directory between builds; copy the binary out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin quantrec \
    && install -D -m 0755 target/release/quantrec /out/quantrec

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/quantrec /usr/local/bin/quantrec
USER 65532:65532
EXPOSE 8000 8001
ENTRYPOINT ["/usr/local/bin/quantrec"]
CMD ["serve", "--models", "/models", "--host", "0.0.0.0", "--http", "8000", "--grpc", "8001"]
