#!/usr/bin/env bash
# Offline checks of terraform/: no provider download, no AWS credentials.
#
#   1. every .tf file parses with python-hcl2;
#   2. checkov reports 0 failed checks (suppressions are inline, with reasons,
#      and listed in terraform/README.md);
#   3. terraform/tests/test_consistency.py ties the configuration to the code
#      (binaries, env-contract.json, table contract, event source mappings);
#   4. the files are formatted as `terraform fmt` would;
#   5. `terraform init -backend=false` and `terraform validate` of the root
#      module, every module and examples/complete, against the real AWS
#      provider from the filesystem mirror (TF_PLUGIN_MIRROR, default
#      /opt/tf-plugins) or, where there is no mirror, from the registry;
#   6. `terraform test` of the root module and examples/complete: plans and
#      applies with a mocked provider (terraform/tests/mocks), so expressions,
#      validations and preconditions are evaluated as a real plan would.
#
# Steps 4-6 need terraform >= 1.9 on PATH. Without it they are skipped with a
# warning, except under CI=true, where a missing terraform is a failure: CI
# must prove the deploy path.
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

log "1/6 parsing every .tf file with python-hcl2 $PYTHON_HCL2_VERSION"
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

log "2/6 checkov $CHECKOV_VERSION on terraform/"
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

log "3/6 consistency tests (terraform/tests)"
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

log "4/6 terraform fmt -check"
HAVE_TERRAFORM=0
if command -v terraform >/dev/null 2>&1; then
  HAVE_TERRAFORM=1
  if terraform fmt -check -recursive -diff terraform 2>/dev/null; then
    echo "formatted"
    add 1 0
  else
    echo "run: terraform fmt -recursive terraform"
    add 0 1
  fi
elif [[ "${CI:-}" == "true" ]]; then
  echo "terraform is not installed: CI cannot prove the deploy path (install Terraform >= 1.9)"
  add 0 1
else
  echo "skip: terraform is not installed; fmt, validate and the mocked plans are NOT checked"
fi

if [[ "$HAVE_TERRAFORM" -eq 1 ]]; then
  # ------------------------------------------- provider: mirror or registry
  # A CLI configuration written here, so no user or machine configuration
  # changes what is tested. With the mirror, hashicorp/aws comes only from it
  # (never downloaded); without, from the registry into a shared plugin cache
  # so the dozen inits download it once.
  MIRROR="${TF_PLUGIN_MIRROR:-/opt/tf-plugins}"
  TF_HOME="$VENV/terraform"
  mkdir -p "$TF_HOME/plugin-cache"
  export TF_CLI_CONFIG_FILE="$TF_HOME/cli.tfrc"
  export TF_IN_AUTOMATION=1 TF_INPUT=0
  if compgen -G "$MIRROR/registry.terraform.io/hashicorp/aws/*" >/dev/null; then
    cat >"$TF_CLI_CONFIG_FILE" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$MIRROR"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }
}
EOF
    echo "provider: hashicorp/aws from the mirror $MIRROR"
  else
    cat >"$TF_CLI_CONFIG_FILE" <<EOF
plugin_cache_dir = "$TF_HOME/plugin-cache"
EOF
    echo "provider: hashicorp/aws from the registry (no mirror at $MIRROR)"
  fi

  # Root and example have a committed lock file: init must not change it
  # (-lockfile=readonly). Reusable modules have none: their callers lock.
  tf_dirs=(terraform terraform/examples/complete)
  for d in terraform/modules/*/; do tf_dirs+=("${d%/}"); done

  # ------------------------------------------------ 5. init + validate
  log "5/6 terraform init -backend=false + validate (${#tf_dirs[@]} configurations)"
  tf_log="$(mktemp)"
  trap 'rm -f "$checkov_log" "$tf_log"' EXIT
  for d in "${tf_dirs[@]}"; do
    lock_mode=()
    if [[ -f "$d/.terraform.lock.hcl" ]] && git ls-files --error-unmatch "$d/.terraform.lock.hcl" >/dev/null 2>&1; then
      lock_mode=(-lockfile=readonly)
    fi
    if terraform -chdir="$d" init -backend=false -no-color "${lock_mode[@]}" >"$tf_log" 2>&1 &&
       terraform -chdir="$d" validate -no-color >>"$tf_log" 2>&1; then
      echo "valid: $d"
      add 1 0
    else
      cat "$tf_log"
      echo "INVALID: $d"
      add 0 1
    fi
  done

  # ------------------------------------------- 6. mocked plans and applies
  log "6/6 terraform test (mocked provider: plan and apply)"
  for d in terraform terraform/examples/complete; do
    set +e
    terraform -chdir="$d" test -no-color >"$tf_log" 2>&1
    test_rc=$?
    set -e
    cat "$tf_log"
    # Terraform counts run blocks: "Success! 6 passed, 0 failed."
    line="$(grep -E '^(Success|Failure)! [0-9]+ passed, [0-9]+ failed' "$tf_log" | tail -n 1 || true)"
    rp="$(sed -E 's/^[A-Za-z]+! ([0-9]+) passed.*/\1/' <<<"${line:-x! 0 passed}")"
    rf="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"${line:-0 failed}")"
    if [[ -z "$line" || ( "$test_rc" -ne 0 && "$rf" -eq 0 ) ]]; then rf=$((rf + 1)); fi
    if [[ "$rp" -eq 0 ]]; then rf=$((rf + 1)); fi
    echo "terraform test $d: runs passed $rp, failed $rf"
    add "$rp" "$rf"
  done
fi

echo "$PASSED passed, $FAILED failed"
[[ "$FAILED" -eq 0 ]]
