#!/usr/bin/env bash
# Installs what the console's browser tests (tests/console) use, skipping
# what is already there:
# - Chromium and its driver from the system's packages (Debian: `chromium`,
#   `chromium-driver`), when no chromium is on PATH; apt-get needs root (or
#   sudo without a password);
# - Playwright for Python into the project venv (.venv), which drives that
#   Chromium (`executable_path`): it never downloads a browser of its own.
set -euo pipefail
PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "the console's browser tests need Chromium: install it with your package manager (or set CHROMIUM_PATH)" >&2
    exit 2
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      echo "the console's browser tests need Chromium: run 'apt-get install -y chromium chromium-driver' as root" >&2
      exit 2
    fi
  fi
  echo "installing chromium (apt-get)" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" - "$PLAYWRIGHT_VERSION" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as md
assert md.version("playwright") == sys.argv[1]
import pytest  # noqa: F401
PY
then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "playwright==$PLAYWRIGHT_VERSION" "pytest==8.4.2"
fi
echo "browser tests ready: $(command -v chromium || command -v chromium-browser), playwright $PLAYWRIGHT_VERSION" >&2
