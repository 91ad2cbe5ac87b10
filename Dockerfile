# Mirrors the README's install: a venv-free system install of the package with the same pins,
# the model fetched and exported at build time (never at run time).
# The console's browser libraries (MapLibre GL JS for the map), pinned in web/package-lock.json.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ingest ingest
COPY detectors detectors
COPY bridge bridge
COPY xueliang xueliang
COPY configs configs
# Served at /vendor/maplibre-gl/ (api.map.library_dir defaults to web/... of the working directory).
COPY --from=web /web/node_modules/maplibre-gl/dist web/node_modules/maplibre-gl/dist
RUN pip install --no-cache-dir -c constraints.txt . \
 && xueliang models fetch --backend openvino --data-dir /data
ENV XUELIANG_DATA_DIR=/data
EXPOSE 8000
CMD ["xueliang", "run", "-c", "configs/demo.yaml", "--host", "0.0.0.0"]
