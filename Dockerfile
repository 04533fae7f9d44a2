# videortc: multi-stage build, small runtime image.
#   docker build -t videortc .
#   docker run --rm -m 200m -p 6060:6060 -e ID=... -e WS_ADDR=wss://.../uid/ -e BASE_URL=https://.../video videortc
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-unknown-unknown
COPY . .
RUN cargo build --release --locked -p videortc && strip target/release/videortc

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /srv videortc
COPY --from=build /src/target/release/videortc /usr/local/bin/videortc
WORKDIR /srv
USER videortc
EXPOSE 6060
EXPOSE 6060/udp
ENTRYPOINT ["/usr/local/bin/videortc"]
CMD ["-p", "6060"]
