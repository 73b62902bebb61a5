# One image for every part of the testbed; the component is chosen by the command
# (docker-compose.yml): python -m mother_unit | remote_sensor | remote_storage |
# remote_processing, or the testbed command line (provision, pair, healthcheck, scenario).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY wire ./wire
COPY security_module ./security_module
COPY mother_unit ./mother_unit
COPY remote_sensor ./remote_sensor
COPY remote_storage ./remote_storage
COPY remote_processing ./remote_processing
COPY simulations ./simulations
COPY testbed ./testbed
# A regular (not editable) install: the software identifiers (P2/U2) are computed
# over the installed package files, and `testbed provision` approves exactly those.
RUN pip install . && rm -rf /src

# /testbed: the provisioned directory (keys, passwords, broker config, logs), a volume;
# /data: the store's SQLite volume. Readable by the broker's user for DIR/broker.
RUN mkdir -m 0755 /testbed /data
WORKDIR /testbed
ENV TESTBED_DIR=/testbed

CMD ["testbed", "--help"]
