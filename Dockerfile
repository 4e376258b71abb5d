# laneway for Cloud Run and local runs: uvicorn serving handler.app, configured by environment.
#   docker build -t laneway .
#   docker run -p 8080:8080 -v "$PWD/examples/config.yaml:/config/config.yaml:ro" \
#     -e CONFIG_FILE_PATH=/config/config.yaml laneway
# EXTRAS adds optional dependency groups, e.g. --build-arg EXTRAS=aws for an S3 config.
FROM python:3.12-slim-bookworm AS build
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
COPY handler ./handler
# A venv is one directory to copy into the runtime stage; bytecode is compiled here because the
# non-root runtime user cannot write it next to the sources at start-up.
RUN python -m venv /opt/laneway \
 && /opt/laneway/bin/pip install --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" \
 && /opt/laneway/bin/pip uninstall --yes pip

FROM python:3.12-slim-bookworm
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin laneway
COPY --from=build /opt/laneway /opt/laneway
ENV PATH=/opt/laneway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NO_DOCS=True \
    HOST=0.0.0.0 \
    PORT=8080
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health/liveliness', timeout=2)"]
# laneway listens on $HOST:$PORT (Cloud Run sets PORT) and finds its config through
# CONFIG_FILE_PATH, LANEWAY_CONFIG (s3:// or gs://) or LITELLM_CONFIG_BUCKET_*; arguments given
# to `docker run` are appended (e.g. --config /config/config.yaml).
ENTRYPOINT ["laneway"]
