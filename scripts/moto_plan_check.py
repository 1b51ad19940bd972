"""Reads `terraform show -json <plan>` after apply and fails unless the plan
is empty, apart from the attributes moto reads back differently from AWS
(given as arguments `<resource type>.<attribute>`, each with its reason in
scripts/apply-terraform.sh).

A data source re-read because a resource it depends on has such a change is
not a change, and neither is an attribute that only becomes unknown for that
reason (a policy rendered from such a data source).

usage: moto_plan_check.py <plan.json> [type.attribute ...]
"""

import json
import sys


def main():
    plan_path, *tolerated = sys.argv[1:]
    tolerated = set(tolerated)
    with open(plan_path) as f:
        plan = json.load(f)
    failures, tolerated_seen = [], []
    for rc in plan.get("resource_changes", []):
        actions = rc["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        before = rc["change"].get("before") or {}
        after = rc["change"].get("after") or {}
        unknown = rc["change"].get("after_unknown") or {}
        if actions != ["update"]:
            failures.append(f"{rc['address']}: {'/'.join(actions)}")
            continue
        for key in sorted(set(before) | set(after) | set(unknown)):
            if unknown.get(key) is True:
                # Unknown only because a re-read data source feeds it.
                continue
            if before.get(key) == after.get(key):
                continue
            name = f"{rc['type']}.{key}"
            line = f"{rc['address']}.{key}: {json.dumps(before.get(key))[:120]} -> {json.dumps(after.get(key))[:120]}"
            if name in tolerated:
                tolerated_seen.append(line)
            else:
                failures.append(line)
    for line in tolerated_seen:
        print(f"moto reads back differently (tolerated): {line}")
    for line in failures:
        print(f"CHANGE AFTER APPLY: {line}")
    if failures:
        sys.exit(1)
    print("plan after apply: no changes" + (" (besides moto's read-back differences above)" if tolerated_seen else ""))


if __name__ == "__main__":
    main()
