# One image for every clientify-odoo service; each compose service picks its sub-command.
# BASE_IMAGE: any Python 3.11+ image with pip on PATH (compose passes ${BASE_IMAGE}, so a
# machine that cannot reach Docker Hub can build on a local stand-in: docs/operations.md).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A non-root user of its own. Not `sync`: every Debian image already has a system user of
# that name (uid 4). uid 10001 is above the ranges images give their own users; the Helm
# chart's securityContext uses the same number. /data is its own, so a fresh named volume
# mounted there is too.
RUN groupadd --gid 10001 clientify \
 && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin clientify \
 && mkdir -p /data \
 && chown clientify:clientify /data
WORKDIR /app

# The dependencies first, read from pyproject.toml alone: a change to the source then
# rebuilds only the small layers below, not the ~100 MB of dependencies.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# README.md is the package's long description.
COPY README.md ./
COPY clientify_odoo ./clientify_odoo
COPY schemas ./schemas
COPY producers ./producers
COPY processors ./processors
COPY consumers ./consumers
COPY connectors ./connectors
RUN pip install --no-deps . && rm -rf build ./*.egg-info
USER 10001:10001
VOLUME ["/data"]
ENTRYPOINT ["clientify-odoo"]
CMD ["--help"]
