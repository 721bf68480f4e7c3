# syntax=docker/dockerfile:1
# Multi-stage build: a full Rust toolchain builds the release binary, a minimal
# distroless image runs it as a non-root user.

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
# Declared in Cargo.toml, so cargo needs it to read the manifest.
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
# Embedded at compile time (sqlx::migrate!).
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked \
    && mkdir -p /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/agentport /usr/local/bin/agentport
# The working directory is where the embedded SQLite file lives by default;
# mount a volume here to keep it across deploys.
COPY --from=build --chown=65532:65532 /data /data
WORKDIR /data
USER nonroot
ENV PORT=8080
EXPOSE 8080
# Exec form: the binary is PID 1 and receives SIGTERM itself (no shell in between).
ENTRYPOINT ["/usr/local/bin/agentport"]
