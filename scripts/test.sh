#!/usr/bin/env bash
# The test command: every test of the project, on a fresh machine.
#
#   scripts/test.sh              all tests
#   scripts/test.sh -p tideline  extra arguments go to `cargo test`
#
# It installs what the tests use: moto[server] into the project venv (.venv),
# for the AWS adapter tests (they start moto on 127.0.0.1 themselves), and
# python-hcl2 + checkov for the offline Terraform checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required for moto and the Terraform checks" >&2; exit 2; }

bash scripts/moto.sh

echo "== cargo test (unit, property, handler, moto adapter and local end-to-end tests)"
cargo test --workspace "$@"

if [ $# -eq 0 ]; then
  echo "== Terraform offline checks (python-hcl2, checkov, consistency with the code, fmt)"
  bash scripts/check-terraform.sh
fi
