# syntax=docker/dockerfile:1
# Tollgate's image: built with the Rust toolchain, run on distroless/cc (glibc, libgcc and
# nothing else: no shell, no package manager) as the non-root user 65532.
#
#   docker build -t registry.example.com/tollgate:0.1.0 .
#   docker run --rm -p 8080:8080 registry.example.com/tollgate:0.1.0 serve --demo
#
# The binary needs only libc, libm, libgcc_s and the loader (tests/deploy.rs checks this with
# ldd and runs it that way: uid 65532, read-only root, writable /var/lib/tollgate and /tmp).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tollgate \
    && install -D -m 0755 target/release/tollgate /out/usr/local/bin/tollgate \
    && install -d -m 0750 /out/var/lib/tollgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/tollgate /usr/local/bin/tollgate
COPY --from=build --chown=65532:65532 /out/var/lib/tollgate /var/lib/tollgate
ENV TOLLGATE__STORE__DIR=/var/lib/tollgate
USER 65532:65532
WORKDIR /var/lib/tollgate
EXPOSE 8080 8443
VOLUME ["/var/lib/tollgate"]
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["serve", "--demo"]
