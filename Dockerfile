# One image for every clientify-odoo service; each compose service picks its sub-command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY clientify_odoo ./clientify_odoo
COPY schemas ./schemas
COPY producers ./producers
COPY processors ./processors
COPY consumers ./consumers
COPY connectors ./connectors
RUN pip install . && useradd --create-home --uid 1000 sync && mkdir -p /data && chown sync /data
USER sync
VOLUME ["/data"]
ENTRYPOINT ["clientify-odoo"]
CMD ["--help"]
