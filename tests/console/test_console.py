"""The web console of `tideline up` in a real browser: headless Chromium
(Debian's package) driven by Playwright for Python, with the system browser
(no browser download).

Each test drives one page against one `tideline up` this module starts on
its own data directory and port, with a log rule for everything and a
webhook rule whose target this module starts and stops. The generator
(`tideline-generator send`) feeds the overview.

Screenshots: every page is captured; with TIDELINE_UPDATE_SCREENSHOTS=1 the
captures replace docs/console/*.png (what docs/console.md shows), otherwise
they go to a temporary directory. A test checks that docs/console.md shows
exactly the pages the tests capture.

Binaries: $TIDELINE_BIN / $TIDELINE_GENERATOR_BIN, or <target>/debug/… (built
with cargo if missing; CARGO_TARGET_DIR is honoured). Chromium:
$CHROMIUM_PATH, or the first of chromium / chromium-browser on PATH.
"""

import base64
import http.server
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "console.md"
SHOTS = ROOT / "docs" / "console"
# What the markup-in-data test sends: it must show as text, never run.
MARKUP = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def binary(name, package):
    env = "TIDELINE_BIN" if name == "tideline" else "TIDELINE_GENERATOR_BIN"
    if os.environ.get(env):
        return os.environ[env]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / name
    if not path.exists():
        subprocess.run(["cargo", "build", "-q", "-p", package, "--bin", name], cwd=ROOT, check=True)
    return str(path)


def chromium():
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is required: apt-get install -y chromium (scripts/test.sh installs it)"
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_records(base, records):
    body = json.dumps(
        {
            "DeliveryStreamName": "tideline-ingest",
            "Records": [{"Data": base64.b64encode(json.dumps(r).encode()).decode()} for r in records],
        }
    ).encode()
    request = urllib.request.Request(
        base + "/",
        data=body,
        headers={"x-amz-target": "Firehose_20150804.PutRecordBatch", "content-type": "application/x-amz-json-1.1"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class Webhook:
    """The webhook rule's target: answers 200 while up; while down nothing listens on its port."""

    def __init__(self, port):
        self.port = port
        self.received = 0
        self.server = None

    def up(self):
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                hook.received += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("console")
    hook = Webhook(free_port())
    rules = work / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {"name": "everything", "event_pattern": {"source": ["tideline"]},
                 "target": {"type": "log", "path": str(work / "everything.jsonl")}},
                {"name": "hook", "event_pattern": {"detail-type": ["HookTest"]},
                 "target": {"type": "webhook", "url": f"http://127.0.0.1:{hook.port}/events"}},
            ]
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [binary("tideline", "tideline"), "up", "--data-dir", str(work / "data"),
         "--listen", f"127.0.0.1:{port}", "--rules", str(rules)],
        env={**os.environ, "RUST_LOG": "warn"},
        stdout=subprocess.DEVNULL,
        stderr=open(work / "up.log", "wb"),
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
            assert server.poll() is None, (work / "up.log").read_text()
            assert time.time() < deadline, "tideline up did not become healthy"
            time.sleep(0.05)
        yield {"base": base, "hook": hook, "work": work}
    finally:
        hook.down()
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def shoot(page, name):
    target = SHOTS if os.environ.get("TIDELINE_UPDATE_SCREENSHOTS") == "1" else pathlib.Path(
        os.environ.get("TMPDIR", "/tmp")) / "tideline-console-shots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=False)


CAPTURED = ["overview", "entities", "entity", "live", "rules", "refused", "tester", "markup"]


def number(text):
    return int(text.replace(",", "").strip() or 0)


def test_the_overview_fills_in_as_the_generator_sends(stack, page):
    page.goto(stack["base"] + "/")
    expect(page.locator("h1")).to_have_text("Overview")
    before = number(page.locator("#events-stored").inner_text())
    generator = subprocess.Popen(
        [binary("tideline-generator", "tideline-generator"), "send", "--target", "firehose",
         "--endpoint-url", stack["base"], "--duration", "6s", "--rate", "400", "--entities", "40",
         "--invalid", "2", "--seed", "7", "--progress", "none"],
        env={**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # While the generator sends, the page (polling every second) shows the count rising, twice.
        seen = [before]
        deadline = time.time() + 15
        while len(set(seen)) < 3 and time.time() < deadline:
            page.wait_for_timeout(400)
            seen.append(number(page.locator("#events-stored").inner_text()))
        assert len(set(seen)) >= 3, f"the count rose at least twice while sending: {seen}"
        assert seen == sorted(seen), f"the count only grows: {seen}"
        expect(page.locator("#rate-now")).not_to_have_text("0", timeout=5000)
        shoot(page, "overview")
    finally:
        out, _ = generator.communicate(timeout=60)
    assert generator.returncode == 0, out.decode()
    # The stage table and the refused count (the generator's malformed records) fill in too.
    expect(page.locator('tr[data-stage="store"] td').nth(2)).not_to_have_text("0")
    expect(page.locator("#refused-count")).not_to_have_text("0", timeout=5000)


def test_finding_an_entity_and_paging_its_history(stack, page):
    put_records(stack["base"], [
        {"entity_id": "browse-1", "id": f"b{i}", "type": "ItemViewed", "data": {"n": i}} for i in range(1, 46)
    ])
    page.goto(stack["base"] + "/console/entities")
    page.fill("#entity-q", "brow")
    link = page.locator("a.entity-link", has_text="browse-1")
    expect(link).to_be_visible()
    shoot(page, "entities")
    link.click()
    expect(page.locator("#page-label")).to_contain_text("page 1 of about 3")
    expect(page.locator("article.event").first).to_have_attribute("data-sequence", "1")
    expect(page.locator("article.event")).to_have_count(20)
    # Each event shows its trace id.
    assert re.fullmatch(r"[0-9a-f]{32}", page.locator("code.trace-id").first.inner_text())
    shoot(page, "entity")
    page.click("#next-page")
    expect(page.locator("#page-label")).to_contain_text("page 2 of about 3")
    expect(page.locator("article.event").first).to_have_attribute("data-sequence", "21")
    page.click("#next-page")
    expect(page.locator("article.event")).to_have_count(5)
    expect(page.locator("article.event").last).to_have_attribute("data-sequence", "45")
    expect(page.locator("#next-page")).to_have_count(0)


def test_a_live_event_appears_within_a_second(stack, page):
    page.goto(stack["base"] + "/console/live")
    # The editor says why a pattern is invalid.
    page.fill("#live-pattern", '{"detail-type": "LiveCheck"}')
    expect(page.locator("#pattern-status")).to_contain_text("invalid pattern")
    page.fill("#live-pattern", '{"detail-type": ["LiveCheck"]}')
    expect(page.locator("#pattern-status")).to_contain_text("valid pattern")
    page.click("#live-apply")
    expect(page.locator("#live-state")).to_contain_text("following")
    page.wait_for_timeout(300)  # the EventSource is subscribed once its headers arrived
    put_records(stack["base"], [{"entity_id": "other", "type": "NotThis", "data": {}}])
    sent = time.monotonic()
    put_records(stack["base"], [{"entity_id": "live-1", "type": "LiveCheck", "data": {"hello": "world"}}])
    page.locator('#live-events li[data-entity="live-1"]').wait_for(timeout=1000)
    elapsed = time.monotonic() - sent
    assert elapsed < 1.0, f"the event took {elapsed:.2f}s to appear"
    expect(page.locator('#live-events li[data-entity="other"]')).to_have_count(0)
    shoot(page, "live")


def test_the_live_view_counts_when_events_come_too_fast_to_draw(stack, page):
    page.goto(stack["base"] + "/console/live")
    expect(page.locator("#live-state")).to_contain_text("following")
    page.wait_for_timeout(300)
    # 2,000 events in a burst: more than the view draws in a second (200).
    for batch in range(4):
        put_records(stack["base"], [
            {"entity_id": f"burst-{i % 20}", "type": "Burst", "data": {"i": i}} for i in range(batch * 500, batch * 500 + 500)
        ])
    expect(page.locator("#live-state")).to_have_attribute("data-counting", "true", timeout=3000)
    expect(page.locator("#live-state")).to_contain_text("too fast to draw")
    assert page.locator("#live-events li").count() <= 200, "rows are bounded"
    # And it draws again once the burst is over.
    expect(page.locator("#live-state")).to_have_attribute("data-counting", "false", timeout=5000)


def test_a_refused_record_shows_its_reason(stack, page):
    answer = put_records(stack["base"], [{"entity_id": "refused-1", "data": {"x": 1}}])
    assert answer["FailedPutCount"] == 0, answer
    page.goto(stack["base"] + "/console/refused")
    row = page.locator("tr.refused-record").first
    expect(row.locator("td.reason")).to_contain_text("type")
    expect(row.locator("td.code")).not_to_be_empty()
    shoot(page, "refused")


def lag_events(page):
    return int(page.locator('section[data-rule="hook"] dd.lag').get_attribute("data-lag-events"))


def lag_seconds(page):
    return float(page.locator('section[data-rule="hook"] .lag-seconds').inner_text())


def test_a_rules_lag_rises_while_its_webhook_is_down_and_falls_when_it_returns(stack, page):
    hook = stack["hook"]
    hook.down()
    page.goto(stack["base"] + "/console/rules")
    expect(page.locator('section[data-rule="hook"]')).to_be_visible()
    assert lag_events(page) == 0
    put_records(stack["base"], [
        {"entity_id": f"hook-{i}", "type": "HookTest", "data": {"i": i}} for i in range(12)
    ])
    # Down: the page (polling each second) shows the target behind, and further behind as time passes.
    expect(page.locator('section[data-rule="hook"] dd.lag')).not_to_have_attribute("data-lag-events", "0", timeout=5000)
    first = lag_seconds(page)
    page.wait_for_timeout(2200)
    assert lag_events(page) > 0
    assert lag_seconds(page) > first, "the lag in seconds rises while the target is down"
    shoot(page, "rules")
    # Up again: the target catches up and the lag falls to zero.
    hook.up()
    expect(page.locator('section[data-rule="hook"] dd.lag')).to_have_attribute("data-lag-events", "0", timeout=30000)
    assert hook.received > 0
    # The events that ran out of retries while it was down are dead letters, with their reason.
    dead = page.locator('section[data-rule="hook"] table.dead-letters td.reason')
    expect(dead.first).to_contain_text(re.compile(r"\S"))
    # Replay from a position: htmx sends the form with the x-tideline-request header
    # (a plain form post is refused: crates/tideline-local/tests/console.rs).
    received = hook.received
    page.fill('#replay-form input[name="from_seq"]', "one")
    page.click("#replay-form button[type=submit]")
    expect(page.locator("#replay-result")).to_contain_text("not a whole number")
    page.fill('#replay-form input[name="entity"]', "hook-0")
    page.fill('#replay-form input[name="from_seq"]', "1")
    page.click("#replay-form button[type=submit]")
    expect(page.locator("#replay-result")).to_contain_text("replayed: 1 published")
    deadline = time.time() + 10
    while hook.received == received and time.time() < deadline:
        time.sleep(0.05)
    assert hook.received == received + 1, "the replayed event reached the webhook"


def test_markup_in_event_data_renders_as_text(stack, page):
    page.goto(stack["base"] + "/console/live")
    expect(page.locator("#live-state")).to_contain_text("following")
    page.wait_for_timeout(300)
    put_records(stack["base"], [{"entity_id": "xss-1", "type": "Noted", "data": {"note": MARKUP}}])
    live = page.locator('#live-events li[data-entity="xss-1"]')
    expect(live).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.locator("#live-events img").count() == 0
    page.goto(stack["base"] + "/console/entity?id=xss-1")
    payload = page.locator("pre.payload").first
    expect(payload).to_contain_text("<script>window.__pwned = 1</script>")
    expect(payload).to_contain_text('<img src=x onerror=')
    assert payload.locator("script, img").count() == 0, "the markup is text, not elements"
    assert page.evaluate("typeof window.__pwned") == "undefined", "no script from event data ran"
    shoot(page, "markup")


def test_the_pattern_tester_names_the_field_that_decided(stack, page):
    page.goto(stack["base"] + "/console/tester")
    page.fill("#tester-event", '{"source": "tideline", "detail-type": "OrderPlaced", "detail": {"data": {"total": 50}}}')
    page.fill("#tester-pattern", '{"detail-type": ["OrderPlaced"], "detail": {"data": {"total": [{"numeric": [">", 100]}]}}}')
    page.click("#tester button[type=submit]")
    expect(page.locator("#verdict")).to_contain_text("no match")
    expect(page.locator("#decided-by")).to_have_text("detail.data.total")
    shoot(page, "tester")
    page.fill("#tester-event", '{"source": "tideline", "detail-type": "OrderPlaced", "detail": {"data": {"total": 150}}}')
    page.click("#tester button[type=submit]")
    expect(page.locator("#verdict")).to_contain_text("match: every field")


def test_docs_show_exactly_the_pages_the_tests_capture():
    shown = re.findall(r"\]\(console/([a-z-]+)\.png\)", DOC.read_text())
    assert sorted(shown) == sorted(CAPTURED), shown
    for name in CAPTURED:
        assert (SHOTS / f"{name}.png").exists(), f"docs/console/{name}.png: run with TIDELINE_UPDATE_SCREENSHOTS=1"
