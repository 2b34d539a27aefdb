#!/usr/bin/env bash
# Installs the system packages Pingan Map needs, with apt, only where they are missing.
# With PINGAN_DATABASE_URL set, the PostgreSQL packages are not needed (an external database).
# Where apt is not available it says what to do instead and fails.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if [ -z "${PINGAN_DATABASE_URL:-}" ]; then
  for p in postgresql-15 postgresql-15-postgis-3 postgresql-15-pgrouting; do
    have_pkg "$p" || need+=("$p")
  done
fi
have_pkg gdal-bin || need+=(gdal-bin)
# a TrueType CJK font the ladder's PDF documents embed (reportlab cannot embed Noto CJK's CFF)
have_pkg fonts-wqy-microhei || need+=(fonts-wqy-microhei)
# `--test`: the real clients the OGC tests drive (GDAL above; QGIS 3.22 headless, ~900 MB) and
# the load tool of the benchmarks; `make demo` does not need them.
if [ "${1:-}" = "--test" ]; then
  for p in python3-qgis qgis-providers wrk chromium fonts-noto-cjk; do have_pkg "$p" || need+=("$p"); done
fi
command -v npm >/dev/null 2>&1 || need+=(npm)
for extra in ${PINGAN_EXTRA_APT:-}; do have_pkg "$extra" || need+=("$extra"); done

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  cat >&2 <<MSG
error: missing system packages (${need[*]}) and no apt-get here.
Either run the whole stack with 'docker compose up', or install PostgreSQL 15 with PostGIS 3
and pgRouting yourself and set PINGAN_DATABASE_URL=postgresql://user:pass@host:port/db.
MSG
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: need root (or sudo) to apt-get install: ${need[*]}" >&2; exit 1
  fi
fi
echo "installing with apt: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
