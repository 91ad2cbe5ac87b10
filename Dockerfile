# Mirrors the README's install: a venv-free system install of the package with the same pins,
# the model fetched and exported at build time (never at run time).
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ingest ingest
COPY detectors detectors
COPY bridge bridge
COPY xueliang xueliang
COPY configs configs
RUN pip install --no-cache-dir -c constraints.txt . \
 && xueliang models fetch --backend openvino --data-dir /data
ENV XUELIANG_DATA_DIR=/data
EXPOSE 8000
CMD ["xueliang", "run", "-c", "configs/demo.yaml", "--host", "0.0.0.0"]
