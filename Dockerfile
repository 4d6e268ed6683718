# One image for a chat node: mosquitto with the chat plugin, chat-bridge and
# chat-wsfront (web app, HTTP API, MQTT over WebSocket), started together by
# deploy/entrypoint.sh. Multi-stage: the build stage compiles; the runtime
# stage holds only the binaries, the plugin, the web app and the libraries
# they load, and runs as a non-root user.
#
# BASE is an argument so the image builds where no registry is reachable:
#   deploy/make-base.sh            (debootstrap + docker import)
#   docker build --network host --build-arg BASE=chat-base:bookworm .
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libmosquitto-dev mosquitto-dev libwebsockets-dev libhiredis-dev \
      libmongoc-dev libbson-dev libjwt-dev libcjson-dev libsodium-dev \
      libsqlite3-dev libssl-dev libzxcvbn-dev >/dev/null && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# MQTT.js for the web app: from the context when a host build already
# fetched it (wsfront/app/node_modules), else from npm here.
COPY wsfront/app/ wsfront/app/
RUN if [ ! -f wsfront/app/node_modules/mqtt/dist/mqtt.min.js ]; then \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null && \
      (cd wsfront/app && npm ci --omit=dev --no-audit --no-fund --loglevel=error); \
    fi && \
    touch wsfront/app/node_modules/.chat-lock-$(sha256sum wsfront/app/package-lock.json | cut -d' ' -f1)
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNPM_EXECUTABLE=/bin/true >/dev/null && \
    cmake --build /build --target chat_auth chat-bridge chat-wsfront chatctl webapp && \
    mkdir -p /out/bin /out/lib /out/app && \
    cp /build/bridge/chat-bridge /build/wsfront/chat-wsfront /build/chatctl/chatctl /out/bin/ && \
    cp /build/authplugin/chat_auth.so /out/lib/ && \
    cp -r /build/wsfront/app/. /out/app/ && \
    strip --strip-unneeded /out/bin/* /out/lib/*

FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive
# the runtime libraries of the binaries above, and openssl for the dev
# certificate of deploy/init-secrets.sh run inside the image
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      mosquitto libmosquitto1 libwebsockets17 libhiredis0.14 libmongoc-1.0-0 \
      libbson-1.0-0 libjwt0 libcjson1 libsodium23 libsqlite3-0 libssl3 libzxcvbn0 \
      ca-certificates >/dev/null && \
    rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* && \
    useradd --system --uid 10001 --home-dir /var/lib/chat --create-home chat
COPY --from=build /out/bin/ /usr/local/bin/
COPY --from=build /out/lib/chat_auth.so /usr/lib/chat/chat_auth.so
COPY --from=build /out/app/ /usr/share/chat/app/
COPY mosquitto.conf /etc/chat/mosquitto.conf
COPY deploy/entrypoint.sh deploy/healthcheck.sh /usr/local/bin/
USER chat
WORKDIR /var/lib/chat
# node ports: MQTT over TLS and HTTPS/WSS face the network; the plain ones
# (1883, 8080) stay on the container's loopback
EXPOSE 8883 8443
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/healthcheck.sh"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
