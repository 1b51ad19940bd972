#!/usr/bin/env bash
# Applies terraform/examples/complete, as shipped with terraform.tfvars.example,
# against moto in server mode with the real hashicorp/aws provider from the
# offline mirror; then the plan after apply must be empty (a perpetual diff
# fails; only MOTO_READ_BACK is tolerated), every function's role is checked
# against the calls its code makes with moto's IAM enforcement on
# (scripts/moto_roles.py, then crates/tideline-lambdas/tests/deployed_roles.rs
# with TIDELINE_DEPLOYED_*), and `terraform destroy` must succeed.
#
#   scripts/apply-terraform.sh            apply, re-plan, roles, destroy
#   KEEP_WORK=1 scripts/apply-terraform.sh   keep the working copy and state
#   TIDELINE_BLESS=1 scripts/apply-terraform.sh  rewrite terraform/iam-calls.json
#                                                from the recorded calls
#
# Changed from the shipped example only where a live API needs it: the
# provider's endpoints point at moto, credentials are moto's, the zips are the
# test fixtures (moto stores them; the roles check runs the debug binaries),
# and what moto cannot serve is listed in MOTO_CANNOT_SERVE below.
#
# Needs terraform >= 1.9 and the provider mirror (TF_PLUGIN_MIRROR, default:
# discovered from /opt/tf-plugins or a search for terraform-provider-aws).
# Installs moto with a pinned botocore into .venv/apply (see why below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '==> [%ss] %s\n' "$SECONDS" "$*"; }
die() { echo "apply-terraform: $*" >&2; exit 1; }

MOTO_VERSION="5.2.5"
# moto routes each request through botocore's service model. The provider
# (5.100, June 2025) speaks the protocols of that time (JSON 1.1 to Athena,
# for one); a newer botocore models some services differently, and moto then
# cannot parse the provider's requests. This botocore is from the same month.
BOTOCORE_VERSION="1.38.36"

# ------------------------------------------------ what moto cannot serve
# The one place where the applied configuration departs from the shipped one
# for moto's sake, with the reason; nothing else is skipped.
#
# - moto has no EventBridge Schemas service (aws_schemas_registry,
#   aws_schemas_schema): the registry entry is not created (a -var).
MOTO_SKIP_VARS=("enable_schema_registry=false")
# - moto drops SQS RedriveAllowPolicy (SetQueueAttributes accepts it,
#   GetQueueAttributes never returns it), so the provider waits for it
#   until it times out: modules/queue's aws_sqs_queue_redrive_allow_policy.dlq
#   is not created (an override file in the working copy: count = 0).
# - attributes moto reads back differently from what it was sent (AWS returns
#   them as sent): the re-plan may show these, and only these, as changes
#   (scripts/moto_plan_check.py; anything else after apply fails):
MOTO_READ_BACK=(
  # GetFunction does not return DeadLetterConfig.
  aws_lambda_function.dead_letter_config
  # GetBucketNotificationConfiguration drops EventBridgeConfiguration.
  aws_s3_bucket_notification.eventbridge
  # GetKeyRotationStatus does not return RotationPeriodInDays.
  aws_kms_key.rotation_period_in_days
  # RedrivePolicy comes back re-serialized with spaces (the same JSON).
  aws_sqs_queue.redrive_policy
)
moto_skip_overrides() {
  cat >"$WORK/repo/terraform/modules/queue/moto_override.tf" <<'EOF'
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count = 0
}
EOF
}

# ------------------------------------------------------------- tools
# As scripts/check-terraform.sh: without terraform this is skipped with a
# warning, except under CI=true, where CI must prove the deploy path.
if ! command -v terraform >/dev/null; then
  if [[ "${CI:-}" == "true" ]]; then die "terraform (>= 1.9) is required on PATH"; fi
  echo "skip: terraform is not installed; examples/complete is NOT applied" >&2
  exit 0
fi

find_mirror() {
  if [[ -n "${TF_PLUGIN_MIRROR:-}" ]]; then
    echo "$TF_PLUGIN_MIRROR"
    return
  fi
  if compgen -G "/opt/tf-plugins/registry.terraform.io/hashicorp/aws/*" >/dev/null; then
    echo /opt/tf-plugins
    return
  fi
  # <mirror>/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws_*
  local binary
  binary="$(find / -xdev -name 'terraform-provider-aws_*' -path '*registry.terraform.io/hashicorp/aws/*' -type f 2>/dev/null | head -n 1 || true)"
  [[ -n "$binary" ]] && dirname "$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$binary")")")")")"
}
MIRROR="$(find_mirror || true)"
if [[ -z "$MIRROR" ]] || ! compgen -G "$MIRROR/registry.terraform.io/hashicorp/aws/*" >/dev/null; then
  die "no hashicorp/aws provider mirror found (set TF_PLUGIN_MIRROR to a directory holding registry.terraform.io/hashicorp/aws/<version>/<os_arch>/)"
fi

VENV="$ROOT/.venv/apply"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "$MOTO_VERSION" "$BOTOCORE_VERSION" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as md
assert md.version("moto") == sys.argv[1]
assert md.version("botocore") == sys.argv[2]
import flask, flask_cors  # server extras
PY
then
  log "installing moto $MOTO_VERSION with botocore $BOTOCORE_VERSION into .venv/apply"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "botocore==$BOTOCORE_VERSION" "boto3==$BOTOCORE_VERSION"
fi

# ------------------------------------------------------- working copy
# A copy of terraform/ and schemas/, so the override file and the state never
# touch the checkout (other runs may share it).
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tideline-apply.XXXXXX")"
MOTO_PID=""
cleanup() {
  if [[ -n "$MOTO_PID" ]]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  if [[ "${KEEP_WORK:-}" == "1" ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/repo"
tar -C "$ROOT" --exclude='.terraform' --exclude='terraform.tfstate*' -cf - terraform schemas | tar -C "$WORK/repo" -xf -
EXAMPLE="$WORK/repo/terraform/examples/complete"
moto_skip_overrides

PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"
# moto_serve_apply.py: moto_server without its own stream event source
# mappings (they would consume the stream the roles check reads).
"$VENV/bin/python" "$ROOT/scripts/moto_serve_apply.py" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do
  curl -fsS "$ENDPOINT/moto-api/" >/dev/null 2>&1 && break
  kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.log"; die "moto did not start"; }
  sleep 0.2
done
log "moto $MOTO_VERSION (botocore $BOTOCORE_VERSION) on $ENDPOINT"

# Merged into the example's provider block (Terraform override files).
services=(apigatewayv2 athena cloudformation cloudwatch dynamodb events firehose glue iam kms lambda logs s3 schemas sns sqs sts)
{
  echo 'provider "aws" {'
  echo '  access_key                  = "test"'
  echo '  secret_key                  = "test"'
  echo '  skip_credentials_validation = true'
  echo '  skip_metadata_api_check     = true'
  echo '  skip_region_validation      = true'
  echo '  s3_use_path_style           = true'
  echo '  endpoints {'
  for s in "${services[@]}"; do echo "    $s = \"$ENDPOINT\""; done
  echo '  }'
  echo '}'
} >"$EXAMPLE/moto_override.tf"
cp "$EXAMPLE/terraform.tfvars.example" "$EXAMPLE/terraform.tfvars"

export TF_CLI_CONFIG_FILE="$WORK/cli.tfrc"
export TF_IN_AUTOMATION=1 TF_INPUT=0
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

vars=(-var "lambda_zip_dir=$ROOT/terraform/tests/fixtures/lambda")
# The example's optional parts, switched on so that they are applied too: the
# realtime fan-out, with the test key pair's JWKS in place of an identity
# provider's (the roles check signs a token with its private key), and the
# low-latency setting.
vars+=(
  -var "realtime_jwks_file=$ROOT/crates/tideline-realtime/tests/fixtures/test-jwks.json"
  -var "realtime_issuer=https://auth.example"
  -var "low_latency=true"
)
for v in "${MOTO_SKIP_VARS[@]}"; do vars+=(-var "$v"); done
tf() { terraform -chdir="$EXAMPLE" "$@"; }
# TIDELINE_ROLES_TEST_BIN: a deployed_roles test binary built beforehand
# (`cargo test -p tideline-lambdas --test deployed_roles --no-run`), so the
# roles check need not wait for cargo while moto holds the deployment.
roles_test() {
  if [[ -n "${TIDELINE_ROLES_TEST_BIN:-}" ]]; then
    (cd "$ROOT/crates/tideline-lambdas" && "$TIDELINE_ROLES_TEST_BIN" --nocapture)
  else
    cargo test -p tideline-lambdas --test deployed_roles -- --nocapture
  fi
}

log "terraform init (provider from $MIRROR)"
tf init -backend=false -no-color -lockfile=readonly >"$WORK/init.log" 2>&1 || { cat "$WORK/init.log"; die "init failed"; }

FAILED=0
log "terraform apply"
if ! tf apply -auto-approve -no-color "${vars[@]}" >"$WORK/apply.log" 2>&1; then
  grep -E -A12 'Error' "$WORK/apply.log" | head -n 120 || true
  tail -n 20 "$WORK/moto.log" || true
  die "terraform apply of examples/complete failed"
fi
grep -E '^Apply complete' "$WORK/apply.log"

log "terraform plan after apply (must be empty but for MOTO_READ_BACK)"
if tf plan -out="$WORK/replan.tfplan" -no-color "${vars[@]}" >"$WORK/plan.log" 2>&1 &&
   tf show -json "$WORK/replan.tfplan" >"$WORK/replan.json"; then
  if ! "$VENV/bin/python" "$ROOT/scripts/moto_plan_check.py" "$WORK/replan.json" "${MOTO_READ_BACK[@]}"; then
    echo "FAILED: the plan after apply is not empty (a perpetual diff)"
    FAILED=1
  fi
else
  cat "$WORK/plan.log"
  echo "FAILED: terraform plan"
  FAILED=1
fi

if [[ -n "${TIDELINE_ROLES_CHECK:-1}" && "${TIDELINE_ROLES_CHECK:-1}" != "0" ]]; then
  log "roles: each function's calls with its own role, moto IAM enforced"
  tf output -json >"$WORK/outputs.json"
  tf show -json >"$WORK/state.json"
  # The cost model's alarm count (tideline_core::cost::DEFAULT_ALARMS) is the
  # root module's, as deployed here.
  want="$(sed -nE 's/^pub const DEFAULT_ALARMS: f64 = ([0-9]+)\.0;/\1/p' "$ROOT/crates/tideline-core/src/cost.rs")"
  have="$("$VENV/bin/python" - "$WORK/state.json" <<'PY'
import json, sys
def res(m):
    yield from m.get("resources", [])
    for c in m.get("child_modules", []):
        yield from res(c)
state = json.load(open(sys.argv[1]))
print(sum(1 for r in res(state["values"]["root_module"])
          if r["type"] == "aws_cloudwatch_metric_alarm" and r["address"].startswith("module.tideline.")
          # realtime is off by default; the example switches it on above.
          and not r["address"].startswith("module.tideline.module.realtime")))
PY
)"
  if [[ "$want" != "$have" ]]; then
    echo "FAILED: the root module deploys $have alarms; tideline_core::cost::DEFAULT_ALARMS says ${want:-nothing}"
    FAILED=1
  fi
  "$VENV/bin/python" "$ROOT/scripts/moto_roles.py" "$ENDPOINT" "$WORK/state.json" "$WORK/credentials.json"
  if ! TIDELINE_DEPLOYED_ENDPOINT="$ENDPOINT" \
       TIDELINE_DEPLOYED_STATE="$WORK/state.json" \
       TIDELINE_DEPLOYED_OUTPUTS="$WORK/outputs.json" \
       TIDELINE_DEPLOYED_CREDENTIALS="$WORK/credentials.json" \
       roles_test; then
    echo "FAILED: the roles check (a denied call, a call the deployed policy does not allow, or a changed call list; see above)"
    FAILED=1
  fi
fi

# Enforcement off again (a count no run reaches): terraform's own calls use
# moto's default credentials, which are no IAM user.
curl -fsS -X POST -H 'Content-Type: text/plain' -d 1000000000 "$ENDPOINT/moto-api/reset-auth" >/dev/null

log "terraform destroy"
if tf destroy -auto-approve -no-color "${vars[@]}" >"$WORK/destroy.log" 2>&1; then
  grep -E '^Destroy complete' "$WORK/destroy.log"
else
  grep -E -A12 'Error' "$WORK/destroy.log" | head -n 80 || true
  echo "FAILED: terraform destroy"
  FAILED=1
fi

if [[ "$FAILED" -ne 0 ]]; then
  die "examples/complete against moto: FAILED (see above)"
fi
log "examples/complete applied, re-planned empty and destroyed against moto"
