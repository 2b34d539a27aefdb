#!/bin/sh
# Migrate, load the demo district when asked (PINGAN_LOAD_DEMO=1), then run the command.
set -eu
: "${PINGAN_DATABASE_URL:?PINGAN_DATABASE_URL must be set}"
pingan db migrate
if [ "${PINGAN_LOAD_DEMO:-0}" = "1" ]; then
  pingan demo load --scale "${PINGAN_DEMO_SCALE:-1}" --seed "${PINGAN_DEMO_SEED:-42}"
fi
exec "$@"
