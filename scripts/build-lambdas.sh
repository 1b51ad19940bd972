#!/usr/bin/env bash
# Builds every Lambda zip with cargo-lambda:
#   target/lambda/<name>/bootstrap.zip   (handler `bootstrap`, runtime provided.al2023)
#   target/lambda/<name>/architecture    (arm64 or x86_64: what the zip runs on)
#
#   scripts/build-lambdas.sh             arm64 (Graviton, ~20% cheaper per GB-s),
#                                        Terraform's default lambda_architecture
#   scripts/build-lambdas.sh --x86-64    x86_64 (what CI builds: it has only the
#                                        x86_64 Rust standard library); deploy
#                                        with lambda_architecture = "x86_64"
#
# The architecture file is what Terraform's function module checks at plan
# time: a zip built for one architecture and deployed as the other applies
# fine and then fails at every invoke, so the mismatch must stop the plan.
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
  # realtime-relay, -authorizer, -routes and -subscriptions: the `realtime` module (off by default) deploys them.
  BINS=(transformer event-storer event-emitter query-api command-api realtime-relay realtime-authorizer realtime-routes realtime-subscriptions)
  # event-responder is another team's function: include it when its package exists.
  if [ -f crates/event-responder/Cargo.toml ] && grep -q 'name *= *"event-responder"' crates/event-responder/Cargo.toml; then
    BINS+=(event-responder)
  fi
fi
ARCH=arm64
PASS=()
for a in "$@"; do
  case "$a" in
    --arm64) ARCH=arm64 ;;
    --x86-64 | --x86_64) ARCH=x86_64 ;;
    *) PASS+=("$a") ;;
  esac
done
ARGS=()
for b in "${BINS[@]}"; do ARGS+=(--bin "$b"); done
if [ "$ARCH" = arm64 ]; then ARGS+=(--arm64); else ARGS+=(--x86-64); fi

cargo lambda build --release --output-format zip "${ARGS[@]}" "${PASS[@]}"

target="${CARGO_TARGET_DIR:-$ROOT/target}"
# The transformer validates records against the schema registry when
# TIDELINE_SCHEMA_REGISTRY names it (Terraform transformer_schema_registry):
# the registry and its schemas travel in the zip, under /var/task/schemas.
if [ -f "$target/lambda/transformer/bootstrap.zip" ] && [ -d schemas ]; then
  python3 - "$target/lambda/transformer/bootstrap.zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "a", zipfile.ZIP_DEFLATED) as z:
    present = set(z.namelist())
    for root, _, files in os.walk("schemas"):
        for f in sorted(files):
            path = os.path.join(root, f)
            if path not in present:
                z.write(path, path)
PY
fi
echo "Lambda zips ($ARCH):"
for b in "${BINS[@]}"; do
  zip="$target/lambda/$b/bootstrap.zip"
  if [ -f "$zip" ]; then
    printf '%s\n' "$ARCH" >"$target/lambda/$b/architecture"
    bytes=$(stat -c %s "$zip")
    printf '  %-16s %8.2f MB  %s\n' "$b" "$(echo "$bytes / 1048576" | bc -l)" "$zip"
  else
    echo "  $b: missing ($zip)" >&2
    exit 1
  fi
done
