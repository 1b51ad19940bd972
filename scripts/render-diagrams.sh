#!/usr/bin/env bash
# Renders every diagrams/*.dot to SVG (embedded by the README and
# docs/deploy.md) and PNG. Installs Graphviz from Debian if `dot` is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "==> installing graphviz (dot is missing)"
  SUDO=""
  if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
fi

shopt -s nullglob
sources=(diagrams/*.dot)
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "no diagrams/*.dot to render" >&2
  exit 1
fi

for src in "${sources[@]}"; do
  base="${src%.dot}"
  dot -Tsvg "$src" -o "$base.svg"
  dot -Tpng -Gdpi=110 "$src" -o "$base.png"
  echo "rendered $base.svg $base.png"
done
