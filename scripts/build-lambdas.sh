#!/usr/bin/env bash
# Builds every Lambda zip with cargo-lambda:
#   target/lambda/<name>/bootstrap.zip   (handler `bootstrap`, runtime provided.al2023)
#
#   scripts/build-lambdas.sh            x86_64 (what CI builds)
#   scripts/build-lambdas.sh --arm64    Graviton, ~20% cheaper per GB-s: use for deployment
#
# Extra arguments go to `cargo lambda build`. cargo-lambda (which brings zig)
# is installed into the project venv (.venv) when missing. Build first, then
# `terraform apply`: Terraform only reads the zips.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  if [ ! -x "$VENV/bin/cargo-lambda" ]; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet cargo-lambda
  fi
  export PATH="$VENV/bin:$PATH"
fi

# TIDELINE_LAMBDAS="transformer query-api" builds a subset.
if [ -n "${TIDELINE_LAMBDAS:-}" ]; then
  read -r -a BINS <<<"$TIDELINE_LAMBDAS"
else
  BINS=(transformer event-storer event-emitter query-api)
  # event-responder is another team's function: include it when its package exists.
  if [ -f crates/event-responder/Cargo.toml ] && grep -q 'name *= *"event-responder"' crates/event-responder/Cargo.toml; then
    BINS+=(event-responder)
  fi
fi
ARGS=()
for b in "${BINS[@]}"; do ARGS+=(--bin "$b"); done

cargo lambda build --release --output-format zip "${ARGS[@]}" "$@"

target="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "Lambda zips:"
for b in "${BINS[@]}"; do
  zip="$target/lambda/$b/bootstrap.zip"
  if [ -f "$zip" ]; then
    bytes=$(stat -c %s "$zip")
    printf '  %-16s %8.2f MB  %s\n' "$b" "$(echo "$bytes / 1048576" | bc -l)" "$zip"
  else
    echo "  $b: missing ($zip)" >&2
    exit 1
  fi
done
