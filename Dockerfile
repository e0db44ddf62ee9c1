# thothbot's container image (README: "Run it with Docker"; compose.yaml).
# Build: docker build -t thothbot .
# Demo:  docker run --rm --network none thothbot demo
# Run:   docker run -d --name thothbot --env-file .env -e THOTH_DB_PATH=/data/thothbot.db
#          -e THOTH_INGRESS_HOST=0.0.0.0 -v thothbot-data:/data -p 127.0.0.1:8080:8080 thothbot
#
# BASE is any Debian-like image with python3 (3.11 or newer) and its venv module; both stages
# use the same one, as the virtualenv made in the first points at the second's interpreter.
ARG BASE=python:3.12-slim

FROM ${BASE} AS build
ARG BUILD_BACKEND=setuptools==84.2.1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# Dependencies first, from the lock, and the pinned build backend in a venv of its own: these
# layers stay cached until requirements.lock changes, so a code change rebuilds in seconds.
COPY requirements.lock /src/requirements.lock
RUN python3 -m venv /opt/thothbot \
    && /opt/thothbot/bin/pip install --quiet -r /src/requirements.lock \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip install --quiet "$BUILD_BACKEND"
COPY pyproject.toml README.md LICENSE /src/
COPY thothbot /src/thothbot
# The wheel, then installed against the lock (pip check: nothing missing or at a version the
# package does not accept).
RUN /opt/build/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /wheels /src \
    && /opt/thothbot/bin/pip install --quiet -c /src/requirements.lock /wheels/thothbot-*.whl \
    && /opt/thothbot/bin/pip check \
    && /opt/thothbot/bin/python -m compileall -q /opt/thothbot/lib

FROM ${BASE}
LABEL org.opencontainers.image.title="thothbot" \
      org.opencontainers.image.description="A self-hosted support desk that lives inside Discord" \
      org.opencontainers.image.licenses="MIT"
# A user of its own with a fixed id (files on the volume keep their owner across rebuilds);
# written directly, as minimal bases may lack useradd.
RUN echo 'thoth:x:10001:10001:thothbot:/data:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'thoth:x:10001:' >> /etc/group \
    && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=build /opt/thothbot /opt/thothbot
ENV PATH=/opt/thothbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    THOTH_DB_PATH=/data/thothbot.db \
    THOTH_INGRESS_HOST=0.0.0.0 \
    THOTH_INGRESS_PORT=8080
USER thoth
WORKDIR /data
VOLUME /data
EXPOSE 8080
# python, not curl: slim images have no curl. The port follows THOTH_INGRESS_PORT.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('THOTH_INGRESS_PORT') or '8080'; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
# thothbot finishes what is under way on SIGTERM (docker stop, podman stop) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["thothbot"]
CMD ["run"]
