#!/usr/bin/env bash
# The test command: every test of the project, on a fresh machine.
#
#   scripts/test.sh              all tests
#   scripts/test.sh -p tideline  extra arguments go to `cargo test`
#
# It installs what the tests use: moto[server] into the project venv (.venv),
# for the AWS adapter tests (they start moto on 127.0.0.1 themselves), and
# python-hcl2 + checkov for the offline Terraform checks, DuckDB for the
# lake queries of docs/lake.md, Chromium (apt) and Playwright (scripts/browser.sh)
# for the console's browser tests, and (scripts/apply-terraform.sh) moto with a
# pinned botocore in .venv/apply for applying the Terraform example.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required for moto and the Terraform checks" >&2; exit 2; }

bash scripts/moto.sh

echo "== cargo test (unit, property, handler, moto adapter and local end-to-end tests)"
cargo test --workspace "$@"

if [ $# -eq 0 ]; then
  echo "== lake queries (docs/lake.md) with DuckDB over a lake written by tideline up"
  VENV="$ROOT/.venv"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -c 'import duckdb, pytest, sys; sys.exit(duckdb.__version__ != "2.0.0")' 2>/dev/null; then
    # packaging stays at 23.2, what checkov (installed by check-terraform.sh) needs.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
      "duckdb==2.0.0" "pytest==8.4.2" "packaging==23.2"
  fi
  # cargo test above built target/debug/tideline, which the test starts.
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/lake

  echo "== the web console in a browser (headless Chromium, Playwright): tests/console"
  bash scripts/browser.sh
  # cargo test above built target/debug/tideline and tideline-generator, which the tests start.
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/console

  echo "== Terraform offline checks (python-hcl2, checkov, consistency with the code, fmt)"
  bash scripts/check-terraform.sh

  echo "== terraform apply of examples/complete against moto, re-plan, roles under IAM enforcement, destroy"
  bash scripts/apply-terraform.sh
fi
