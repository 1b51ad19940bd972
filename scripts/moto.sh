#!/usr/bin/env bash
# Installs moto in server mode into the project venv (.venv), for the
# moto-backed tests (harness: tideline_testkit::moto). Idempotent: installs only what is
# missing, so it coexists with other tools in the same venv (checkov, hcl2).
#
#   scripts/moto.sh            install (or check) moto[server]
#   scripts/moto.sh serve [P]  install, then run moto_server on 127.0.0.1:P (default 5000)
#
# The Rust tests start moto themselves from .venv/bin/moto_server unless
# TIDELINE_MOTO_ENDPOINT points at a running one.
set -euo pipefail
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$MOTO_VERSION" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as md
assert md.version("moto") == sys.argv[1]
import flask, flask_cors  # server extras
PY
then
  "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
fi
echo "moto $MOTO_VERSION ready: $VENV/bin/moto_server" >&2

if [ "${1:-}" = "serve" ]; then
  exec "$VENV/bin/moto_server" -H 127.0.0.1 -p "${2:-5000}"
fi
