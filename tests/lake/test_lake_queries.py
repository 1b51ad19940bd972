"""The three queries of docs/lake.md, run with DuckDB against a lake written
by `tideline up`, with their answers checked.

The SQL is read from docs/lake.md itself (the ```sql blocks), so the
documented queries cannot drift from what is tested. The setup block's path
`.tideline/lake/` is pointed at this test's data directory.

The binary is $TIDELINE_BIN, or <target>/debug/tideline (built with cargo if
missing; CARGO_TARGET_DIR is honoured).
"""

import base64
import json
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.request

import duckdb
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "lake.md"


def sql_blocks():
    text = DOC.read_text()
    return [b.strip() for b in re.findall(r"```sql\n(.*?)```", text, flags=re.S)]


def block(prefix):
    found = [b for b in sql_blocks() if b.startswith(prefix)]
    assert len(found) == 1, f"docs/lake.md must have one ```sql block starting {prefix!r}"
    return found[0]


def tideline_bin():
    if os.environ.get("TIDELINE_BIN"):
        return os.environ["TIDELINE_BIN"]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "tideline"
    if not binary.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "tideline", "--bin", "tideline"], cwd=ROOT, check=True)
    return str(binary)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_record_batch(base, records):
    body = json.dumps(
        {
            "DeliveryStreamName": "tideline-ingest",
            "Records": [{"Data": base64.b64encode(r).decode()} for r in records],
        }
    ).encode()
    request = urllib.request.Request(
        base + "/",
        data=body,
        headers={
            "x-amz-target": "Firehose_20150804.PutRecordBatch",
            "content-type": "application/x-amz-json-1.1",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert answer["FailedPutCount"] == 0, answer


def event(entity, type_, id_, occurred_at, **data):
    return json.dumps(
        {"entity_id": entity, "type": type_, "id": id_, "occurred_at": occurred_at, "data": data}
    ).encode()


SENT = [
    event("order-1", "OrderPlaced", "e1", "2026-11-20T10:00:00Z", total=10),
    event("order-1", "ItemAdded", "e2", "2026-11-20T11:00:00Z", sku="a"),
    event("order-2", "OrderPlaced", "e3", "2026-11-20T12:00:00Z", total=5),
    event("order-1", "OrderShipped", "e4", "2026-11-21T09:00:00Z"),
    # A type that is not safe as a path segment: its partition is
    # event_type=Order_Cancelled_v2, its `type` stays exact.
    event("order-2", "Order Cancelled/v2", "e5", "2026-11-21T10:00:00Z"),
    # Refused: two are not JSON, one has no entity id.
    b"not json at all",
    b"{broken",
    json.dumps({"type": "OrderPlaced", "id": "e6", "data": {}}).encode(),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("lake")
    data = work / "data"
    rules = work / "rules.json"
    rules.write_text(
        json.dumps(
            [{"name": "log", "event_pattern": {"source": ["tideline"]}, "target": {"type": "log", "path": str(work / "delivered.jsonl")}}]
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [tideline_bin(), "up", "--data-dir", str(data), "--listen", f"127.0.0.1:{port}", "--rules", str(rules)],
        env={**os.environ, "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "tideline up did not become healthy"
            time.sleep(0.05)
        # The lake is written before PutRecordBatch answers: once it has,
        # every record is in events/ or processing-failed/.
        put_record_batch(base, SENT)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return data / "lake"


@pytest.fixture(scope="module")
def db(lake):
    con = duckdb.connect()
    setup = block("-- DuckDB setup")
    assert ".tideline/lake/" in setup
    con.execute(setup.replace(".tideline/lake/", f"{lake}/"))
    return con


def test_the_local_lake_has_the_one_layout(lake):
    dirs = sorted(str(p.relative_to(lake)) for p in lake.glob("*/*/*") if p.is_dir())
    assert "events/event_type=OrderPlaced/date=2026-11-20" in dirs
    assert "events/event_type=Order_Cancelled_v2/date=2026-11-21" in dirs
    assert any(d.startswith("processing-failed/error_type=processing-failed/date=") for d in dirs)
    assert all(d.startswith(("events/event_type=", "processing-failed/error_type=")) for d in dirs), dirs


def test_query_1_events_per_type_per_day(db):
    rows = db.execute(block("-- Query 1")).fetchall()
    assert rows == [
        ("2026-11-20", "ItemAdded", 1),
        ("2026-11-20", "OrderPlaced", 2),
        ("2026-11-21", "Order Cancelled/v2", 1),
        ("2026-11-21", "OrderShipped", 1),
    ]


def test_query_2_one_entitys_history(db):
    rows = db.execute(block("-- Query 2")).fetchall()
    assert [(r[1], r[2]) for r in rows] == [
        ("OrderPlaced", "e1"),
        ("ItemAdded", "e2"),
        ("OrderShipped", "e4"),
    ]
    assert [r[0][:10] for r in rows] == ["2026-11-20", "2026-11-20", "2026-11-21"]


def test_query_3_refused_records_by_reason(db):
    rows = db.execute(block("-- Query 3")).fetchall()
    assert rows == [("NotJson", 2), ("MissingField", 1)]
