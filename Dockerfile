# KubeKMS: one image, two entry points (kubekms-api, kubekms-operator).
#
# Build stage: a virtualenv with the project and its dependencies, built with compilers available
# for any dependency without a wheel on the target platform (python-pkcs11 on some architectures).
# Final stage: the same Python base with only that virtualenv copied in; no compilers, no pip
# cache, no package lists. Runs as UID/GID 10001 and needs no writable path but /tmp, so it works
# with readOnlyRootFilesystem. PKCS#11 support is built in; the HSM's own library (for example
# SoftHSM or a vendor's) is mounted at run time, never baked in.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/kubekms
WORKDIR /src
# Dependencies first so that a source-only change reuses this layer.
COPY pyproject.toml README.md ./
RUN /opt/kubekms/bin/pip install --upgrade pip setuptools wheel \
 && /opt/kubekms/bin/python -c 'import subprocess, tomllib; \
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; \
subprocess.run(["/opt/kubekms/bin/pip", "install", *deps], check=True)'
COPY core ./core
COPY operator ./operator
COPY api ./api
# A regular (not editable) install: the final stage has no /src. Byte-code is compiled here
# because the final image's root filesystem is read-only.
RUN /opt/kubekms/bin/pip install --no-deps . \
 && /opt/kubekms/bin/python -m compileall -q /opt/kubekms/lib \
 && /opt/kubekms/bin/pip uninstall -y pip setuptools wheel \
 && test -x /opt/kubekms/bin/kubekms-api && test -x /opt/kubekms/bin/kubekms-operator \
 && /opt/kubekms/bin/python -c "import pkcs11, kms_core, kms_api, kms_operator"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kubekms" \
      org.opencontainers.image.description="Key management service for Kubernetes, wire-compatible with Infisical's KMS API" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 kubekms \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin kubekms
COPY --from=build /opt/kubekms /opt/kubekms
ENV PATH=/opt/kubekms/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 9090 8081
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz; the API serves both.
CMD ["kubekms-api", "--host", "0.0.0.0", "--port", "8080"]
