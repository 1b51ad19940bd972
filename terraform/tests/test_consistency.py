"""Ties the Terraform configuration to the Rust code, without AWS.

Terraform cannot plan here (no providers), so these tests read the `.tf`
files with python-hcl2 and compare them with what the code fixes:

* every function's zip path names a binary the workspace builds, and every
  binary is deployed;
* every environment variable the code requires is set, and nothing outside
  crates/tideline-lambdas/env-contract.json is;
* the events table matches the table contract;
* both event source mappings report batch item failures;
* no IAM Allow statement carries a wildcard action.

Run with pytest, or as `python terraform/tests/test_consistency.py`, which
prints "N passed, N failed".
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"

# checkov ships a fork of the parser under the same `hcl2` name; the check
# script installs python-hcl2 itself into .venv/python-hcl2, so prefer it.
_HCL2 = REPO / ".venv" / "python-hcl2"
if _HCL2.is_dir() and str(_HCL2) not in sys.path:
    sys.path.insert(0, str(_HCL2))

import hcl2  # noqa: E402

ENV_CONTRACT = REPO / "crates" / "tideline-lambdas" / "env-contract.json"
LAMBDAS_CARGO = REPO / "crates" / "tideline-lambdas" / "Cargo.toml"
RESPONDER_CARGO = REPO / "crates" / "event-responder" / "Cargo.toml"

ZIP_PATH = re.compile(r"^\$\{(?:local|var)\.lambda_zip_dir\}/([A-Za-z0-9_-]+)/bootstrap\.zip$")
ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


# ----------------------------------------------------------------- helpers


def unq(value):
    """python-hcl2 keeps the quotes of string literals: strip them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def tf_files():
    return sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)


@lru_cache(maxsize=None)
def parse(path: Path) -> dict:
    with path.open() as handle:
        return hcl2.load(handle)


def blocks(path: Path, kind: str):
    """Yield (labels..., body) of every top-level block of a kind."""
    for entry in parse(path).get(kind, []):
        for label, body in entry.items():
            yield unq(label), body


def resources(kind: str):
    """Yield (path, name, body) of every resource of a type, in any file."""
    for path in tf_files():
        for rtype, named in blocks(path, "resource"):
            if rtype != kind:
                continue
            for name, body in named.items():
                yield path, unq(name), body


def module_calls():
    """Yield (path, name, body) of every module block."""
    for path in tf_files():
        for name, body in blocks(path, "module"):
            yield path, name, body


def resolved_source(path: Path, body: dict) -> Path:
    return (path.parent / unq(body["source"])).resolve()


def locals_of(path: Path) -> dict:
    merged = {}
    for entry in parse(path).get("locals", []):
        merged.update(entry)
    return merged


def env_keys(value) -> set[str]:
    """Keys of a literal map; a non-literal expression yields no keys."""
    if isinstance(value, dict):
        return {unq(k) for k in value if k not in ("__is_block__", "__comments__")}
    return set()


def first(value):
    return value[0] if isinstance(value, list) else value


# ---------------------------------------------------------- code contracts


@lru_cache(maxsize=None)
def workspace_binaries() -> frozenset[str]:
    lambdas = tomllib.loads(LAMBDAS_CARGO.read_text())
    names = {b["name"] for b in lambdas.get("bin", [])}
    responder = tomllib.loads(RESPONDER_CARGO.read_text())
    names.add(responder["package"]["name"])
    return frozenset(names)


@lru_cache(maxsize=None)
def env_contract() -> dict[str, dict[str, frozenset[str]]]:
    raw = json.loads(ENV_CONTRACT.read_text())
    return {
        binary: {"required": frozenset(spec["required"]), "optional": frozenset(spec["optional"])}
        for binary, spec in raw.items()
        if not binary.startswith("_")
    }


# ---------------------------------------------------- what terraform deploys

FUNCTION_MODULE = (TERRAFORM / "modules" / "function").resolve()
CONSUMER_MODULE = (TERRAFORM / "modules" / "consumer").resolve()


def consumer_managed_environment() -> set[str]:
    return env_keys(locals_of(CONSUMER_MODULE / "main.tf").get("managed_environment"))


def deployments():
    """Every Lambda deployed from a cargo-lambda zip, with its environment.

    Returns a list of dicts: where, binary, always (keys always set) and
    optional (keys that may be set). Calls inside the consumer module pass
    `var.zip_path` through; they are covered by the consumer calls.
    """
    found = []
    for path, name, body in module_calls():
        source = resolved_source(path, body)
        if source not in (FUNCTION_MODULE, CONSUMER_MODULE):
            continue
        zip_path = unq(body.get("zip_path", ""))
        if zip_path == "${var.zip_path}" and path.parent.resolve() == CONSUMER_MODULE:
            continue
        match = ZIP_PATH.match(zip_path)
        always = env_keys(body.get("environment", {}))
        if source == CONSUMER_MODULE:
            always |= consumer_managed_environment()
        found.append(
            {
                "where": f"{path.relative_to(REPO)}: module {name}",
                "zip_path": zip_path,
                "binary": match.group(1) if match else None,
                "always": always,
                "optional": env_keys(body.get("optional_environment", {})),
                "raw_environment": body.get("environment"),
            }
        )
    return found


# ------------------------------------------------------------------- tests


def test_env_contract_lists_every_workspace_binary():
    assert set(env_contract()) == set(workspace_binaries()), (
        "env-contract.json and the workspace's binaries disagree: "
        f"contract {sorted(env_contract())}, workspace {sorted(workspace_binaries())}"
    )


def test_every_zip_path_names_a_workspace_binary():
    deployed = deployments()
    assert deployed, "no function module calls found"
    for d in deployed:
        assert d["binary"] is not None, (
            f"{d['where']}: zip_path {d['zip_path']!r} is not <lambda_zip_dir>/<binary>/bootstrap.zip"
        )
        assert d["binary"] in workspace_binaries(), (
            f"{d['where']}: {d['binary']!r} is not a binary the workspace builds {sorted(workspace_binaries())}"
        )


def test_every_workspace_binary_is_deployed_once():
    binaries = [d["binary"] for d in deployments()]
    for binary in workspace_binaries():
        assert binaries.count(binary) == 1, f"{binary} is deployed {binaries.count(binary)} times"


def test_environment_is_a_literal_map():
    for d in deployments():
        assert isinstance(d["raw_environment"], dict), (
            f"{d['where']}: environment must be a literal map so it can be checked"
        )


def test_every_required_variable_is_always_set():
    for d in deployments():
        if d["binary"] not in env_contract():
            continue  # reported by test_every_zip_path_names_a_workspace_binary
        required = env_contract()[d["binary"]]["required"]
        missing = required - d["always"]
        assert not missing, f"{d['where']} ({d['binary']}) does not set required {sorted(missing)}"


def test_no_variable_outside_the_contract_is_set():
    for d in deployments():
        if d["binary"] not in env_contract():
            continue  # reported by test_every_zip_path_names_a_workspace_binary
        spec = env_contract()[d["binary"]]
        allowed = spec["required"] | spec["optional"]
        unknown = (d["always"] | d["optional"]) - allowed
        assert not unknown, f"{d['where']} ({d['binary']}) sets {sorted(unknown)}, which the code does not read"
        for key in d["always"] | d["optional"]:
            assert ENV_KEY.match(key), f"{d['where']}: {key!r} is not an environment variable name"


def test_function_module_adds_no_variables_of_its_own():
    fn = [b for p, n, b in resources("aws_lambda_function") if p.parent.resolve() == FUNCTION_MODULE]
    assert len(fn) == 1, "the function module must hold the only aws_lambda_function"
    env = first(fn[0]["environment"])
    assert unq(env["variables"]) == "${merge(var.environment, local.optional_environment)}"
    optional = locals_of(FUNCTION_MODULE / "main.tf")["optional_environment"]
    assert "var.optional_environment" in optional and "if v != null" in optional


def test_consumer_module_passes_environment_through():
    calls = [b for p, n, b in module_calls() if p.parent.resolve() == CONSUMER_MODULE]
    assert len(calls) >= 1
    fn = [b for b in calls if unq(b.get("source")) == "../function"]
    assert len(fn) == 1
    assert unq(fn[0]["environment"]) == "${merge(var.environment, local.managed_environment)}"
    assert unq(fn[0]["optional_environment"]) == "${var.optional_environment}"
    assert consumer_managed_environment() == {"TIDELINE_CONSUMER_NAME", "TIDELINE_CHECKPOINT_TABLE"}


def test_lambda_runtime_and_packaging():
    (_, _, fn), = [r for r in resources("aws_lambda_function") if r[0].parent.resolve() == FUNCTION_MODULE]
    assert unq(fn["runtime"]) == "provided.al2023"
    assert unq(fn["handler"]) == "bootstrap"
    assert unq(fn["filename"]) == "${var.zip_path}"
    assert unq(fn["source_code_hash"]) == "${filebase64sha256(var.zip_path)}"
    assert unq(first(fn["tracing_config"])["mode"]) == "Active"
    assert unq(fn["architectures"][0]) == "${var.architecture}"
    arch = dict(blocks(FUNCTION_MODULE / "variables.tf", "variable"))["architecture"]
    assert unq(arch["default"]) == "arm64"


def _events_table():
    tables = [b for p, n, b in resources("aws_dynamodb_table") if p.parent.name == "store" and n == "events"]
    assert len(tables) == 1, "modules/store must define aws_dynamodb_table.events"
    return tables[0]


def test_events_table_matches_the_table_contract():
    t = _events_table()
    assert unq(t["hash_key"]) == "pk"
    assert unq(t["range_key"]) == "sk"
    attributes = {unq(a["name"]): unq(a["type"]) for a in t["attribute"]}
    assert attributes == {"pk": "S", "sk": "S"}, attributes
    # Decision 0009: no index by default; the legacy LSI only behind
    # legacy_sequence_index (evaluated in tests/store_index.tftest.hcl).
    assert "local_secondary_index" not in t, "the LSI must be a dynamic block behind legacy_sequence_index"
    assert t["stream_enabled"] is True
    assert unq(t["stream_view_type"]) == "NEW_AND_OLD_IMAGES"
    ttl = first(t["ttl"])
    assert unq(ttl["attribute_name"]) == "expires_at" and ttl["enabled"] is True


def test_events_table_operational_settings():
    t = _events_table()
    assert unq(t["billing_mode"]) == "PAY_PER_REQUEST"
    assert first(t["point_in_time_recovery"])["enabled"] is True
    sse = first(t["server_side_encryption"])
    assert sse["enabled"] is True and "kms_key_arn" in sse
    assert unq(t["deletion_protection_enabled"]) == "${var.deletion_protection}"


def test_checkpoint_table_has_string_pk_and_sk():
    tables = [b for p, n, b in resources("aws_dynamodb_table") if p.parent.resolve() == CONSUMER_MODULE]
    assert len(tables) == 1
    t = tables[0]
    assert (unq(t["hash_key"]), unq(t["range_key"])) == ("pk", "sk")
    assert {unq(a["name"]): unq(a["type"]) for a in t["attribute"]} == {"pk": "S", "sk": "S"}


def _mappings():
    return {n: b for p, n, b in resources("aws_lambda_event_source_mapping")}


def test_both_event_source_mappings_report_batch_item_failures():
    mappings = _mappings()
    assert set(mappings) == {"queue_to_storer", "stream_to_emitter"}, sorted(mappings)
    for name, body in mappings.items():
        types = [unq(t) for t in body.get("function_response_types", [])]
        assert types == ["ReportBatchItemFailures"], f"{name} must report batch item failures, has {types}"


def test_queue_mapping_is_bounded():
    m = _mappings()["queue_to_storer"]
    assert "module.queue.arn" in m["event_source_arn"] and "module.event_storer" in m["function_name"]
    assert "maximum_concurrency" in first(m["scaling_config"])
    assert "maximum_batching_window_in_seconds" not in m, "FIFO event sources take no batching window"
    var = dict(blocks(TERRAFORM / "variables.tf", "variable"))["storer_batch_size"]
    condition = unq(first(var["validation"])["condition"])
    assert "<= 10" in condition, "storer_batch_size must be validated to at most 10 (the FIFO limit)"


def test_stream_mapping_is_bounded_and_has_a_failure_destination():
    m = _mappings()["stream_to_emitter"]
    assert "module.store.stream_arn" in m["event_source_arn"] and "module.event_emitter" in m["function_name"]
    for key in (
        "batch_size",
        "parallelization_factor",
        "bisect_batch_on_function_error",
        "maximum_retry_attempts",
        "maximum_record_age_in_seconds",
    ):
        assert key in m, f"stream mapping lacks {key}"
    on_failure = first(first(m["destination_config"])["on_failure"])
    assert "module.stream_failures.arn" in on_failure["destination_arn"]


def test_queue_visibility_is_at_least_six_times_the_storer_timeout():
    variables = dict(blocks(TERRAFORM / "modules" / "queue" / "variables.tf", "variable"))
    condition = unq(first(variables["visibility_timeout_seconds"]["validation"])["condition"])
    assert "6 * var.consumer_timeout_seconds" in condition
    call = [b for p, n, b in module_calls() if n == "queue" and p.parent == TERRAFORM][0]
    assert unq(call["consumer_timeout_seconds"]) == "${var.event_storer.timeout_seconds}"
    assert "6 * var.event_storer.timeout_seconds" in call["visibility_timeout_seconds"]


def test_firehose_partitions_and_keeps_failures():
    (_, _, stream), = list(resources("aws_kinesis_firehose_delivery_stream"))
    s3 = first(stream["extended_s3_configuration"])
    assert first(s3["dynamic_partitioning_configuration"])["enabled"] is True
    processors = first(first(s3["processing_configuration"])["processors"])
    assert unq(processors["type"]) == "Lambda"
    ingest_locals = locals_of(TERRAFORM / "modules" / "ingest" / "main.tf")
    assert unq(ingest_locals["error_prefix"]).startswith("processing-failed/")
    assert "partitionKeyFromLambda:event_type" in ingest_locals["data_prefix"]
    assert "partitionKeyFromLambda:date" in ingest_locals["data_prefix"]


WILDCARD_ACTION = re.compile(r'"[a-z0-9-]+:[A-Za-z]*\*[A-Za-z]*"')


def test_no_allow_statement_has_a_wildcard_action():
    """Wildcard actions may appear only in Deny statements (TLS-only policies)."""
    for path in tf_files():
        text = "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith(("#", "//")))
        in_text = len(WILDCARD_ACTION.findall(text))
        in_deny = 0
        for dtype, named in blocks(path, "data"):
            if dtype != "aws_iam_policy_document":
                continue
            for _, doc in named.items():
                for statement in doc.get("statement", []):
                    wildcards = [a for a in statement.get("actions", []) if "*" in unq(a)]
                    if unq(statement.get("effect", '"Allow"')) == "Deny":
                        in_deny += len(wildcards)
                    else:
                        assert not wildcards, f"{path.relative_to(REPO)}: Allow statement with {wildcards}"
        assert in_text == in_deny, f"{path.relative_to(REPO)}: wildcard action outside a Deny statement"


def test_every_dead_letter_queue_has_a_depth_alarm():
    for path in tf_files():
        queues = [n for t, named in blocks(path, "resource") if t == "aws_sqs_queue" for n in named]
        alarms = [
            b
            for t, named in blocks(path, "resource")
            if t == "aws_cloudwatch_metric_alarm"
            for b in named.values()
        ]
        for queue in queues:
            queue = unq(queue)
            if path.parent.name == "queue" and queue == "this":
                continue  # the FIFO source queue: it has an age alarm instead
            if path.parent.name == "ordered_bus" and queue == "subscriber":
                continue  # the ordered bus's delivery queue: an age alarm too
            watched = [
                a
                for a in alarms
                if f"aws_sqs_queue.{queue}.name" in json.dumps(a.get("dimensions", ""))
                and unq(a["metric_name"]) == "ApproximateNumberOfMessagesVisible"
                and unq(a["threshold"]) in (0, "0")
            ]
            assert watched, f"{path.relative_to(REPO)}: queue {queue} has no depth > 0 alarm"


def test_consumer_rule_comes_from_the_shared_rules_file():
    rules = json.loads((TERRAFORM / "examples" / "complete" / "rules.json").read_text())
    assert isinstance(rules, list)
    for rule in rules:
        assert set(rule) >= {"name", "event_pattern", "target"}, rule
        assert rule["target"]["type"] in ("log", "webhook", "lambda")
    names = [r["name"] for r in rules]
    assert names.count("event-responder") == 1
    call = [b for p, n, b in module_calls() if n == "event_responder"]
    assert len(call) == 1
    assert unq(call[0]["rule_name"]) == "event-responder"
    rule_resource = [b for p, n, b in resources("aws_cloudwatch_event_rule") if p.parent.resolve() == CONSUMER_MODULE]
    assert unq(rule_resource[0]["event_pattern"]) == "${local.event_pattern}"
    # The rules file's pattern, unless the consumer's handler registry gives
    # its own (event_pattern_json, printed by `--print-event-pattern`).
    pattern = locals_of(CONSUMER_MODULE / "main.tf")["event_pattern"]
    assert "var.event_pattern_json" in pattern and "jsonencode(try(local.rule.event_pattern, {}))" in pattern


def test_example_rules_route_like_local_mode():
    """The example's rules file and docs/examples/rules.json agree on shared rules."""
    local = REPO / "docs" / "examples" / "rules.json"
    if not local.exists():
        return
    ours = {r["name"]: r for r in json.loads((TERRAFORM / "examples" / "complete" / "rules.json").read_text())}
    theirs = {r["name"]: r for r in json.loads(local.read_text())}
    for name in set(ours) & set(theirs):
        assert ours[name]["event_pattern"] == theirs[name]["event_pattern"], (
            f"rule {name}: event_pattern differs between the example and docs/examples/rules.json"
        )
        assert ours[name]["target"]["type"] == theirs[name]["target"]["type"]


def test_every_variable_and_output_is_documented():
    for path in tf_files():
        for name, body in blocks(path, "variable"):
            assert unq(body.get("description", "")), f"{path.relative_to(REPO)}: variable {name} has no description"
            assert "type" in body, f"{path.relative_to(REPO)}: variable {name} has no type"
        for name, body in blocks(path, "output"):
            assert unq(body.get("description", "")), f"{path.relative_to(REPO)}: output {name} has no description"


def test_every_tf_file_parses():
    files = tf_files()
    assert len(files) > 20
    for path in files:
        parse(path)


# ------------------------------------------------------------ plain runner


def main() -> int:
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_") and callable(f)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception as error:  # report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
