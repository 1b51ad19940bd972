#!/usr/bin/env bash
# Offline checks of terraform/: no provider download, no AWS credentials.
#
#   1. every .tf file parses with python-hcl2;
#   2. checkov reports 0 failed checks (suppressions are inline, with reasons,
#      and listed in terraform/README.md);
#   3. terraform/tests/test_consistency.py ties the configuration to the code
#      (binaries, env-contract.json, table contract, event source mappings);
#   4. the files are formatted as `terraform fmt` would (when terraform exists).
#
# Idempotent; installs what it uses into .venv on first run. Prints
# "N passed, N failed" last and exits non-zero if anything failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

CHECKOV_VERSION="3.3.30"
PYTHON_HCL2_VERSION="8.1.4"
PYTEST_VERSION="8.4.2"
# checkov 3.3.x requires packaging < 24; pinned so pytest does not upgrade it.
PACKAGING_VERSION="23.2"

VENV="$ROOT/.venv"
HCL2_DIR="$VENV/python-hcl2"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '==> %s\n' "$*"; }

# ------------------------------------------------------------------ set up

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "check-terraform: Python 3.11+ is needed (tomllib)" >&2
  exit 1
fi

installed_version() { "$PY" -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}'; }

if [[ "$(installed_version checkov)" != "$CHECKOV_VERSION" ||
      "$(installed_version pytest)" != "$PYTEST_VERSION" ||
      "$(installed_version packaging)" != "$PACKAGING_VERSION" ]]; then
  log "installing checkov $CHECKOV_VERSION and pytest $PYTEST_VERSION into .venv (first run only)"
  "$PY" -m pip install --quiet \
    "checkov==$CHECKOV_VERSION" "pytest==$PYTEST_VERSION" "packaging==$PACKAGING_VERSION"
fi

# checkov depends on bc-python-hcl2, a fork that installs the same `hcl2`
# module. python-hcl2 goes into its own directory and is put first on
# PYTHONPATH for the parse step and the tests, so the two never overwrite
# each other.
if ! compgen -G "$HCL2_DIR/python_hcl2-$PYTHON_HCL2_VERSION.dist-info" >/dev/null; then
  log "installing python-hcl2 $PYTHON_HCL2_VERSION into .venv/python-hcl2"
  rm -rf "$HCL2_DIR"
  "$PY" -m pip install --quiet --target "$HCL2_DIR" "python-hcl2==$PYTHON_HCL2_VERSION"
fi

PASSED=0
FAILED=0
add() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); }

# ------------------------------------------------------------ 1. parsing

log "1/4 parsing every .tf file with python-hcl2 $PYTHON_HCL2_VERSION"
parse_out="$(PYTHONPATH="$HCL2_DIR" "$PY" - <<'EOF'
import pathlib, sys
import hcl2
ok = bad = 0
for path in sorted(pathlib.Path("terraform").rglob("*.tf")):
    if ".terraform" in path.parts:
        continue
    try:
        with path.open() as handle:
            hcl2.load(handle)
        ok += 1
    except Exception as error:
        bad += 1
        print(f"parse error: {path}: {error}", file=sys.stderr)
print(ok, bad)
EOF
)" || parse_out="0 1"
read -r p f <<<"$parse_out"
echo "parsed $p files, $f failed"
if [[ "$p" -eq 0 ]]; then f=$((f + 1)); fi
add "$p" "$f"

# ------------------------------------------------------------ 2. checkov

log "2/4 checkov $CHECKOV_VERSION on terraform/"
checkov_log="$(mktemp)"
trap 'rm -f "$checkov_log"' EXIT
set +e
"$VENV/bin/checkov" --directory terraform --framework terraform \
  --quiet --compact --download-external-modules false --skip-download \
  >"$checkov_log" 2>&1
checkov_rc=$?
set -e
cat "$checkov_log"
summary="$(grep -Eo 'Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' "$checkov_log" | head -n 1 || true)"
if [[ -z "$summary" ]]; then
  echo "checkov printed no summary (exit $checkov_rc)"
  add 0 1
else
  cp="$(sed -E 's/Passed checks: ([0-9]+).*/\1/' <<<"$summary")"
  cf="$(sed -E 's/.*Failed checks: ([0-9]+).*/\1/' <<<"$summary")"
  if [[ "$checkov_rc" -ne 0 && "$cf" -eq 0 ]]; then cf=1; fi
  if [[ "$cp" -eq 0 ]]; then cf=$((cf + 1)); fi
  add "$cp" "$cf"
fi

# --------------------------------------------------- 3. consistency tests

log "3/4 consistency tests (terraform/tests)"
set +e
PYTHONPATH="$HCL2_DIR" "$VENV/bin/pytest" -q -p no:cacheprovider terraform/tests \
  >"$checkov_log" 2>&1
pytest_rc=$?
set -e
cat "$checkov_log"
tp="$(grep -Eo '[0-9]+ passed' "$checkov_log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0)"
tf="$( (grep -Eo '[0-9]+ (failed|error|errors)' "$checkov_log" || true) | awk '{s += $1} END {print s + 0}')"
# pytest exits 5 when no test ran: that is a failure here.
if [[ "$pytest_rc" -ne 0 && "$tf" -eq 0 ]]; then tf=1; fi
if [[ "$tp" -eq 0 ]]; then tf=$((tf + 1)); fi
add "$tp" "$tf"

# ------------------------------------------------------------ 4. format

log "4/4 terraform fmt -check"
if command -v terraform >/dev/null 2>&1; then
  if terraform fmt -check -recursive -diff terraform 2>/dev/null; then
    echo "formatted"
    add 1 0
  else
    echo "run: terraform fmt -recursive terraform"
    add 0 1
  fi
else
  echo "skip: terraform is not installed, formatting not checked"
fi

echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
