# nginx with ngx_http_canary_module, canary-sidecar and canary-ctl.
#
#     docker build -t nginx-canary .
#     docker run --rm -p 8080:8080 nginx-canary
#     curl -H 'X-Tenant-Id: acme' localhost:8080/
#     curl 'localhost:8080/canary_status?format=prometheus'
#
# The build stage compiles nginx from the nginx.org release tarball
# (checked against NGINX_SHA256) with the module as a dynamic module,
# and the sidecar with the project's Makefile.  The runtime stage is
# debian:bookworm-slim with the shared libraries only, and runs nginx as
# the unprivileged user "nginx" (uid 101) on port 8080.
#
# NGINX_VERSION is the version the module is built and tested against
# (Debian bookworm's nginx-dev, /usr/share/nginx/src): t/docker.t fails
# when the two differ.  To move to another version, change both ARGs
# together; the SHA-256 is that of nginx-VERSION.tar.gz on nginx.org.

ARG NGINX_VERSION=1.22.1
ARG NGINX_SHA256=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31


FROM debian:bookworm-slim AS build

ARG NGINX_VERSION
ARG NGINX_SHA256

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends \
        build-essential \
        ca-certificates \
        curl \
        libcurl4-openssl-dev \
        libhiredis-dev \
        libjansson-dev \
        libmicrohttpd-dev \
        libpcre2-dev \
        libssl-dev \
        zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

# the release tarball, before any source of ours: a change to the module
# does not download nginx again
WORKDIR /usr/src/nginx
RUN curl -fsSL -o /usr/src/nginx.tar.gz \
        "https://nginx.org/download/nginx-${NGINX_VERSION}.tar.gz" \
    && echo "${NGINX_SHA256}  /usr/src/nginx.tar.gz" | sha256sum -c - \
    && tar -xzf /usr/src/nginx.tar.gz --strip-components=1 \
    && rm /usr/src/nginx.tar.gz

# what the module and the sidecar are built from: the nginx addon file,
# the Makefile and the sources (.dockerignore keeps the rest out)
COPY config Makefile /src/
COPY src/ /src/src/

# prefix /var/cache/nginx/, the one directory the nginx user may write:
# the pid file, logs/ and the temp directories are relative to it (the
# defaults); the configuration is /etc/nginx/nginx.conf.  The compiler
# and linker flags are those of Debian's own nginx package.
RUN ./configure \
        --prefix=/var/cache/nginx \
        --sbin-path=/usr/sbin/nginx \
        --modules-path=/usr/lib/nginx/modules \
        --conf-path=/etc/nginx/nginx.conf \
        --error-log-path=stderr \
        --with-compat \
        --with-threads \
        --with-file-aio \
        --with-pcre-jit \
        --with-http_ssl_module \
        --with-http_v2_module \
        --with-http_realip_module \
        --with-http_stub_status_module \
        --with-http_auth_request_module \
        --with-http_gzip_static_module \
        --with-http_gunzip_module \
        --with-http_sub_module \
        --with-http_slice_module \
        --with-stream \
        --with-stream_ssl_module \
        --with-stream_ssl_preread_module \
        --with-stream_realip_module \
        --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat \
            -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2" \
        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC" \
        --add-dynamic-module=/src \
    && make -j"$(nproc)" \
    && objs/nginx -V

# the sidecar, as "make" builds it for the tests
RUN make -C /src BUILD=/usr/src/build sidecar


FROM debian:bookworm-slim

ARG NGINX_VERSION

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

LABEL org.opencontainers.image.title="nginx-canary" \
      org.opencontainers.image.description="nginx ${NGINX_VERSION} \
with ngx_http_canary_module, canary-sidecar and canary-ctl"

# shared libraries of nginx, the module and the sidecar; redis-tools for
# canary-ctl; curl for the HEALTHCHECK
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends \
        ca-certificates \
        curl \
        libcrypt1 \
        libcurl4 \
        libhiredis0.14 \
        libjansson4 \
        libmicrohttpd12 \
        libpcre2-8-0 \
        libssl3 \
        redis-tools \
        zlib1g \
    && rm -rf /var/lib/apt/lists/*

# the unprivileged user; group 0 may write the prefix too, for platforms
# that run containers under an arbitrary uid in group root.  logs/ leads
# to the container's stderr and stdout, as "docker logs" expects.
RUN groupadd --system --gid 101 nginx \
    && useradd --system --uid 101 --gid nginx --no-create-home \
        --home-dir /var/cache/nginx --shell /usr/sbin/nologin nginx \
    && mkdir -p /var/cache/nginx/logs /etc/canary \
    && ln -sf /dev/stderr /var/cache/nginx/logs/error.log \
    && ln -sf /dev/stdout /var/cache/nginx/logs/access.log \
    && chown -R 101:0 /var/cache/nginx \
    && chmod -R g=u /var/cache/nginx

COPY --from=build /usr/src/nginx/objs/nginx /usr/sbin/nginx
COPY --from=build /usr/src/nginx/objs/ngx_http_canary_module.so \
    /usr/lib/nginx/modules/
COPY --from=build /usr/src/build/canary-sidecar /usr/local/bin/canary-sidecar
COPY scripts/canary-ctl /usr/local/bin/canary-ctl
COPY docker/nginx.conf /etc/nginx/nginx.conf
COPY conf-examples/standalone.conf /etc/nginx/canary.conf
COPY conf-examples/plan-default.json /etc/canary/plan.json

USER 101

# every library is there, and the default configuration loads the module;
# the temp directories "nginx -t" makes go, so that whatever uid runs the
# container makes its own
RUN ldd /usr/sbin/nginx /usr/lib/nginx/modules/ngx_http_canary_module.so \
        /usr/local/bin/canary-sidecar | { ! grep 'not found'; } \
    && nginx -t \
    && rm -rf /var/cache/nginx/*_temp \
    && canary-sidecar --help >/dev/null \
    && canary-ctl --help >/dev/null \
    && redis-cli --version

EXPOSE 8080

STOPSIGNAL SIGQUIT

HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", \
         "http://127.0.0.1:8080/canary_status"]

CMD ["nginx", "-g", "daemon off;"]
