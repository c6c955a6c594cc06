# small-yi server image: the web console and the HTTP API (docs/install.md, "Docker").
#
#   docker build -t small-yi .
#   docker run -d -p 8080:8080 -v small-yi-data:/var/lib/small-yi \
#       -v "$PWD/config.yaml:/etc/small-yi/config.yaml:ro" small-yi
#
# Two stages: the first builds small-yi's wheel (xterm.js and Swagger UI fetched from the npm registry by
# scripts/vendor_assets.py, checked against package-lock.json; no Node.js) and installs it into a venv;
# the second is a slim Python image with that venv, git (GitOps), and nothing to build with.
# The image runs the venv, not the single-file executable: no unpacking at each start, and tracebacks
# that name real files. This project's CI has no container engine: the image is not built there
# (tests/integration/test_packaging.py checks what this file copies and builds the wheel from it).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY package-lock.json pyproject.toml setup.py README.md ./
COPY scripts/vendor_assets.py scripts/
COPY src/ src/
RUN python -m venv /opt/small-yi \
 && /opt/small-yi/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/small-yi/bin/pip install --no-cache-dir . \
 && /opt/small-yi/bin/small-yi --version

FROM python:${PYTHON_VERSION}-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/small-yi --shell /usr/sbin/nologin small-yi \
 && install -d -o small-yi -g small-yi -m 0750 /var/lib/small-yi \
 && install -d -m 0755 /etc/small-yi
COPY --from=build /opt/small-yi /opt/small-yi
ENV PATH=/opt/small-yi/bin:$PATH \
    SMALLYI_CONFIG=/etc/small-yi/config.yaml \
    PYTHONUNBUFFERED=1
USER small-yi
WORKDIR /var/lib/small-yi
# the SQLite database, the master and audit keys, the GitOps clone: point the config's paths here
VOLUME ["/var/lib/small-yi"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# tini: signals reach the server (it archives running tasks on SIGTERM) and orphans of commands run on the
# built-in `local` host are reaped
ENTRYPOINT ["/usr/bin/tini", "--", "small-yi"]
CMD ["serve", "--config", "/etc/small-yi/config.yaml"]
