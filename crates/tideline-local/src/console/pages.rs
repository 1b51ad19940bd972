//! The console's pages and fragments. Each handler reads what it shows from
//! the stack ([`Shared`]) with the same calls as the JSON routes, and renders
//! it with maud, which escapes every spliced value.

use super::{
    Console, encode_segment, html_error, html_response, or_dash, page, pretty, thousands,
    throughput_chart,
};
use crate::shared::Shared;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use tideline_pattern::Pattern;
use tideline_stages::query::{QueryRequest, handle_query};
use tracing::{info, warn};

/// Entities one search page lists.
const ENTITIES_PER_PAGE: usize = 50;
/// Events one history page shows: one query API page (its `limit`).
const EVENTS_PER_PAGE: usize = 20;
/// Refused records and dead letters a page lists (the newest).
const LISTED: usize = 100;
/// Dead letters listed under each rule (the newest).
const DEAD_LETTERS_PER_RULE: usize = 20;

type ConsoleState = State<Arc<Console>>;

// ---------------------------------------------------------------- overview

pub(super) async fn overview(State(console): ConsoleState) -> Response {
    page(
        "/",
        "Overview",
        html! {
            div #overview-stats hx-get="/console/overview/stats" hx-trigger="every 1s" hx-swap="outerHTML" {
                (stats(&console))
            }
        },
    )
}

pub(super) async fn overview_stats(State(console): ConsoleState) -> Response {
    html_response(html! {
        div #overview-stats hx-get="/console/overview/stats" hx-trigger="every 1s" hx-swap="outerHTML" {
            (stats(&console))
        }
    })
}

fn stats(console: &Console) -> Markup {
    let shared = &console.shared;
    let (events, entities) = shared.store.totals().unwrap_or_default();
    let (head, emitted) = shared.store.feed_positions().unwrap_or_default();
    let rejected = shared.store.rejected().map(|r| r.len()).unwrap_or(0);
    let (refused, _) = shared.refused_at_ingest(0);
    let dead_letters = shared
        .bus
        .deliveries()
        .dead_letters()
        .map(|d| d.len())
        .unwrap_or(0);
    let stages = [
        ("transform (ingest)", shared.counters.transform.snapshot()),
        ("store", shared.counters.store.snapshot()),
        ("emit", shared.counters.emit.snapshot()),
    ];
    html! {
        section.tiles {
            div.tile { span.label { "events stored" } span.value #events-stored { (thousands(events)) } }
            div.tile { span.label { "entities" } span.value #entity-count { (thousands(entities)) } }
            div.tile { span.label { "records being stored" } span.value #in-flight { (thousands(shared.handoff.in_flight())) } }
            div.tile { span.label { "refused at ingest" } span.value #refused-count { a href="/console/refused" { (thousands(refused)) } } }
            div.tile { span.label { "rejected by the store" } span.value { a href="/console/refused" { (thousands(rejected as u64)) } } }
            div.tile { span.label { "dead letters" } span.value #dead-letter-count { a href="/console/rules" { (thousands(dead_letters as u64)) } } }
            div.tile { span.label { "feed: written / emitted" } span.value { (thousands(head.max(0) as u64)) " / " (thousands(emitted.max(0) as u64)) } }
        }
        (throughput_chart(&console.samples()))
        h2 { "Stages" }
        table #stage-counters {
            thead { tr { th { "stage" } th { "received" } th { "sent" } th { "discarded" } th { "failed" } } }
            tbody {
                @for (name, c) in &stages {
                    tr data-stage=(name) {
                        td { (name) } td.num { (thousands(c.received)) } td.num { (thousands(c.sent)) }
                        td.num { (thousands(c.discarded)) } td.num { (thousands(c.failed)) }
                    }
                }
                @for outlet in shared.bus.outlets() {
                    @let c = outlet.counters.snapshot();
                    tr data-stage=(format!("route {}", outlet.name)) {
                        td { "route → " (outlet.name.as_ref()) } td.num { (thousands(c.received)) } td.num { (thousands(c.sent)) }
                        td.num { (thousands(c.discarded)) } td.num { (thousands(c.failed)) }
                    }
                }
            }
        }
        p.hint { "sent: passed on (stored, published, delivered); discarded: a duplicate or an event the rule does not match; failed: refused, rejected or dead-lettered, each with its reason." }
    }
}

// ---------------------------------------------------------------- entities

#[derive(Deserialize)]
pub(super) struct EntitySearch {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

pub(super) async fn entities(
    State(console): ConsoleState,
    headers: HeaderMap,
    Query(search): Query<EntitySearch>,
) -> Response {
    let results = entity_results(&console.shared, search.q.trim(), &search.after);
    if headers.contains_key("hx-request") && !headers.contains_key("hx-boosted") {
        // htmx asks for the results only (typing in the search box, "more").
        return html_response(results);
    }
    page(
        "/console/entities",
        "Entities",
        html! {
            form.search action="/console/entities" method="get" role="search" {
                label for="entity-q" { "Entity id or prefix" }
                input #entity-q type="search" name="q" value=(search.q) placeholder="order-"
                    autocomplete="off" autofocus
                    hx-get="/console/entities" hx-trigger="input changed delay:250ms, search"
                    hx-target="#entity-results" hx-swap="outerHTML";
                button type="submit" { "Search" }
            }
            (results)
        },
    )
}

fn entity_results(shared: &Shared, prefix: &str, after: &str) -> Markup {
    let found = shared
        .store
        .entities_with_prefix(prefix, after, ENTITIES_PER_PAGE + 1)
        .map(|mut rows| {
            // One more than a page was asked for: whether there is a next page.
            let more = rows.len() > ENTITIES_PER_PAGE;
            rows.truncate(ENTITIES_PER_PAGE);
            (rows, more)
        });
    html! {
        div #entity-results {
            @match found {
                Err(e) => p.error role="alert" { "search failed: " (e.to_string()) },
                Ok((rows, more)) => {
                    @if rows.is_empty() {
                        p.empty { "No entity id starts with " code { (prefix) } "." }
                    } @else {
                        table {
                            thead { tr { th { "entity" } th { "events (last seq)" } th { "last stored" } } }
                            tbody {
                                @for (id, last_seq, stored_at) in &rows {
                                    tr {
                                        td { a.entity-link href=(format!("/console/entity?id={}", encode_segment(id))) { (id) } }
                                        td.num { (thousands(*last_seq)) }
                                        td { (stored_at) }
                                    }
                                }
                            }
                        }
                        @if more {
                            @if let Some((last, _, _)) = rows.last() {
                                a.more href=(format!("/console/entities?q={}&after={}", encode_segment(prefix), encode_segment(last)))
                                  hx-get=(format!("/console/entities?q={}&after={}", encode_segment(prefix), encode_segment(last)))
                                  hx-target="#entity-results" hx-swap="outerHTML" { "Next " (ENTITIES_PER_PAGE) " →" }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct EntityPage {
    id: String,
    cursor: Option<String>,
    #[serde(default)]
    page: Option<u64>,
}

async fn query(shared: &Shared, path: String, params: Vec<(String, String)>) -> (u16, Value) {
    let resp = handle_query(
        &*shared.store,
        &QueryRequest {
            method: "GET".into(),
            path,
            params,
        },
    )
    .await;
    (resp.status, resp.body)
}

/// One entity: its head, then one page of its history read through the
/// query API (its `limit` and opaque `cursor`), each event's envelope and
/// payload pretty-printed.
pub(super) async fn entity(
    State(console): ConsoleState,
    Query(req): Query<EntityPage>,
) -> Response {
    let shared = &console.shared;
    let segment = encode_segment(&req.id);
    let (status, head) = query(shared, format!("/entities/{segment}"), Vec::new()).await;
    if status != 200 {
        let message = head
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("not found")
            .to_string();
        let mut response = page(
            "/console/entities",
            "Entity",
            html! { p.error role="alert" { "Entity " code { (req.id) } ": " (message) } },
        );
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
        return response;
    }
    let mut params = vec![("limit".to_string(), EVENTS_PER_PAGE.to_string())];
    if let Some(cursor) = req.cursor.as_deref().filter(|c| !c.is_empty()) {
        params.push(("cursor".into(), cursor.to_string()));
    }
    let (status, body) = query(shared, format!("/entities/{segment}/events"), params).await;
    let page_no = req.page.unwrap_or(1).max(1);
    let last = head
        .get("last_sequence")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let pages = last.div_ceil(EVENTS_PER_PAGE as u64).max(1);
    let history = html! {
        section #history {
            @if status != 200 {
                p.error role="alert" { "history: " (body.get("message").and_then(Value::as_str).unwrap_or("unreadable")) }
            } @else {
                @let items = body.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                @let next = body.get("next_cursor").and_then(Value::as_str);
                nav.pager {
                    span #page-label { "page " (page_no) " of about " (thousands(pages)) " (" (EVENTS_PER_PAGE) " events a page)" }
                    @if page_no > 1 {
                        @let first = format!("/console/entity?id={segment}");
                        a href=(first) hx-get=(first) hx-target="#history" hx-select="#history" hx-swap="outerHTML" hx-push-url="true" { "← First" }
                    }
                    @if let Some(next) = next {
                        @let href = format!("/console/entity?id={segment}&cursor={}&page={}", encode_segment(next), page_no + 1);
                        a #next-page href=(href) hx-get=(href) hx-target="#history" hx-select="#history" hx-swap="outerHTML" hx-push-url="true" { "Next →" }
                    }
                }
                ol.events {
                    @for item in &items { li { (event_card(item)) } }
                }
            }
        }
    };
    page(
        "/console/entities",
        &format!("Entity {}", req.id),
        html! {
            p.head {
                "last sequence " strong { (thousands(last)) }
                ", last event at " (or_dash(head.get("last_event_at").and_then(Value::as_str)))
            }
            (history)
        },
    )
}

/// The W3C trace id of a `traceparent` (`00-<trace id>-<parent>-<flags>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    traceparent.split('-').nth(1).filter(|t| t.len() == 32)
}

/// One integration event's detail: metadata summary, envelope and payload.
fn event_card(detail: &Value) -> Markup {
    let meta = detail.get("metadata").cloned().unwrap_or(Value::Null);
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let traceparent = text("traceparent");
    html! {
        article.event data-sequence=(meta.get("sequence").map(Value::to_string).unwrap_or_default()) {
            header {
                span.seq { "#" (meta.get("sequence").map(Value::to_string).unwrap_or_default()) }
                " " strong.type { (text("event_type").unwrap_or_default()) }
                " " span.muted { "id " code { (text("event_id").unwrap_or_default()) } }
                " " span.muted { "stored " (text("stored_at").unwrap_or_default()) }
                " " span.trace { "trace " code.trace-id { (or_dash(traceparent.as_deref().and_then(trace_id).or(traceparent.as_deref()))) } }
            }
            details {
                summary { "envelope" }
                pre.envelope { (pretty(&meta)) }
            }
            pre.payload { (pretty(detail.get("data").unwrap_or(&Value::Null))) }
        }
    }
}

// ---------------------------------------------------------------- live

pub(super) async fn live() -> Response {
    page(
        "/console/live",
        "Live",
        html! {
            form #live-form {
                label for="live-pattern" { "EventBridge pattern (empty: every event)" }
                textarea #live-pattern name="pattern" rows="4" spellcheck="false"
                    placeholder=r#"{"detail-type": ["OrderPlaced"]}"#
                    hx-post="/console/pattern/check" hx-trigger="input changed delay:250ms"
                    hx-target="#pattern-status" {}
                div #pattern-status aria-live="polite" { span.ok { "every event" } }
                button #live-apply type="submit" { "Follow" }
                " "
                button #live-pause type="button" { "Pause" }
            }
            p #live-state aria-live="polite" { "connecting…" }
            ol #live-events {}
        },
    )
}

#[derive(Deserialize)]
pub(super) struct PatternText {
    #[serde(default)]
    pattern: String,
}

/// Whether a pattern compiles, and if not, why (the pattern crate's message
/// names the line and column, or the JSON path at fault).
pub(super) async fn pattern_check(Form(form): Form<PatternText>) -> Response {
    let text = form.pattern.trim();
    if text.is_empty() {
        return html_response(html! { span.ok data-valid="true" { "every event" } });
    }
    html_response(match Pattern::parse(text) {
        Ok(_) => html! { span.ok data-valid="true" { "valid pattern" } },
        Err(e) => {
            html! { span.error data-valid="false" role="alert" { "invalid pattern: " (e.to_string()) } }
        }
    })
}

// ---------------------------------------------------------------- rules

pub(super) async fn rules(State(console): ConsoleState) -> Response {
    page(
        "/console/rules",
        "Rules",
        html! {
            (rules_fragment(&console.shared))
            h2 { "Replay" }
            p.hint { "Re-publishes stored events to the bus, marked " code { "metadata.replay = true" } ", in sequence order per entity; every rule whose pattern matches delivers them again. Give an entity and the sequence to start from, or a stored-at window." }
            form #replay-form hx-post="/console/replay" hx-target="#replay-result"
                hx-headers=r#"{"x-tideline-request": "console"}"# {
                label { "entity " input name="entity" placeholder="order-1"; }
                label { "from seq " input name="from_seq" inputmode="numeric" size="8"; }
                label { "to seq " input name="to_seq" inputmode="numeric" size="8"; }
                span.or { "or" }
                label { "since " input name="since" placeholder="2026-12-07T10:00:00Z" size="22"; }
                label { "until " input name="until" size="22"; }
                button type="submit" { "Replay" }
            }
            div #replay-result aria-live="polite" {}
        },
    )
}

pub(super) async fn rules_table(State(console): ConsoleState) -> Response {
    html_response(rules_fragment(&console.shared))
}

/// How far a rule's target is behind: feed positions between its checkpoint
/// and the head, and the age of the oldest event it has not delivered.
fn lag(shared: &Shared, checkpoint: i64, head: i64) -> (u64, Option<f64>) {
    let behind = head.saturating_sub(checkpoint).max(0) as u64;
    if behind == 0 {
        return (0, Some(0.0));
    }
    let seconds = shared
        .store
        .events_after(checkpoint, 1)
        .ok()
        .and_then(|events| events.into_iter().next())
        .and_then(|(_, event)| chrono::DateTime::parse_from_rfc3339(&event.stored_at).ok())
        .map(|at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
        })
        .map(|s| s.max(0.0));
    (behind, seconds)
}

fn rules_fragment(shared: &Shared) -> Markup {
    let deliveries = shared.bus.deliveries();
    let head = shared.store.feed_positions().map(|(h, _)| h).unwrap_or(0);
    let dead_letters = deliveries.dead_letters().unwrap_or_default();
    html! {
        div #rules hx-get="/console/rules/table" hx-trigger="every 1s" hx-swap="outerHTML" {
            @if shared.config.rules.is_empty() {
                p.empty { "No rules: start " code { "tideline up --rules FILE" } " to route events to targets." }
            }
            @for rule in &shared.config.rules {
                @let name = rule.spec.name.as_str();
                @let outlet = shared.bus.outlets().iter().find(|o| &*o.name == name);
                @let checkpoint = deliveries.checkpoint(name).unwrap_or(0);
                @let (behind, seconds) = lag(shared, checkpoint, head);
                @let counts = outlet.map(|o| o.counters.snapshot()).unwrap_or_default();
                @let own: Vec<_> = dead_letters.iter().filter(|d| d.rule == name).collect();
                section.rule data-rule=(name) {
                    h2 { (name) }
                    dl {
                        dt { "target" } dd { code { (serde_json::to_string(&rule.spec.target).unwrap_or_default()) } }
                        dt { "checkpoint" } dd.checkpoint { (checkpoint) " of " (head) }
                        dt { "lag" } dd.lag data-lag-events=(behind) {
                            span.lag-events { (thousands(behind)) } " events, "
                            span.lag-seconds { @match seconds { Some(s) => (format!("{s:.1}")), None => "?" } } " s"
                        }
                        dt { "routed" } dd { (thousands(counts.received)) " received, " (thousands(counts.sent)) " delivered, "
                            (thousands(counts.discarded)) " not matching, " (thousands(counts.failed)) " dead-lettered" }
                    }
                    details {
                        summary { "pattern" }
                        pre { (pretty(&rule.spec.event_pattern)) }
                    }
                    h3 { "Dead letters (" (own.len()) ")" }
                    @if own.is_empty() {
                        p.empty { "none" }
                    } @else {
                        table.dead-letters {
                            thead { tr { th { "event" } th { "attempts" } th { "reason" } } }
                            tbody {
                                @for d in own.iter().rev().take(DEAD_LETTERS_PER_RULE) {
                                    @let m = d.event.pointer("/detail/metadata");
                                    tr {
                                        td { code { (m.and_then(|m| m.get("entity_id")).and_then(Value::as_str).unwrap_or("?"))
                                             " #" (m.and_then(|m| m.get("sequence")).map(Value::to_string).unwrap_or_default()) } }
                                        td.num { (d.attempts) }
                                        td.reason { (d.reason) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ReplayForm {
    #[serde(default)]
    entity: String,
    #[serde(default)]
    from_seq: String,
    #[serde(default)]
    to_seq: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

/// The console's replay: the replay stage, as `POST /_tideline/replay` runs
/// it, from a form. Refused without the `x-tideline-request` header, so that
/// no page on another site can submit it (a form cannot set a header; a
/// script that does triggers a preflight this server never grants).
pub(super) async fn replay(
    State(console): ConsoleState,
    headers: HeaderMap,
    Form(form): Form<ReplayForm>,
) -> Response {
    use tideline_core::replay::Selection;
    use tideline_stages::emit::EmitConfig;
    use tideline_stages::replay::{OnFailure, ReplayConfig, ReplayError, replay};
    if !headers.contains_key(crate::shared::REQUEST_HEADER) {
        warn!(
            action = "replay",
            "console action refused: no x-tideline-request header"
        );
        return html_error(
            StatusCode::FORBIDDEN,
            "a replay must carry the x-tideline-request header (the console sends it); a plain form post is refused so that no other web page can trigger one",
        );
    }
    let text = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string);
    let number = |field: &str, s: &str| -> Result<Option<u64>, String> {
        text(s)
            .map(|t| {
                t.parse::<u64>()
                    .map_err(|_| format!("{field}: {t:?} is not a whole number"))
            })
            .transpose()
    };
    let (from_seq, to_seq) = match (
        number("from seq", &form.from_seq),
        number("to seq", &form.to_seq),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return html_error(StatusCode::BAD_REQUEST, &e),
    };
    let (entity, since, until) = (text(&form.entity), text(&form.since), text(&form.until));
    let selection = match Selection::from_request(
        entity.as_deref(),
        from_seq,
        to_seq,
        since.as_deref(),
        until.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => return html_error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let shared = &console.shared;
    let config = ReplayConfig {
        emit: EmitConfig {
            source: shared.config.source.clone(),
            retry: shared.config.retry,
            bundle: None,
        },
        on_failure: OnFailure::Stop,
    };
    let store = &*shared.store;
    match replay(store, store, &*shared.bus, &config, &selection).await {
        Ok(report) => {
            info!(
                action = "replay",
                published = report.published,
                failed = report.failed,
                "console replay"
            );
            html_response(html! {
                p.ok role="status" { "replayed: " (report.published) " published, " (report.failed) " failed" }
                @for f in report.failures.iter().take(1) {
                    p.error role="alert" { "stopped: " (f.error.as_deref().unwrap_or("a publish failed")) "; rerun from " code { (f.rewind_from.to_string()) } }
                }
            })
        }
        Err(ReplayError::Store(e)) => html_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        Err(ReplayError::Index(e)) => html_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

// ---------------------------------------------------------------- refused

/// Records refused at ingest (the lake's `processing-failed/`, newest
/// first), with the Firehose `errorCode` (the rule: `OverLimit`,
/// `SchemaViolation`, …) and the message naming the limit or schema rule;
/// then records the store stage rejected.
pub(super) async fn refused(State(console): ConsoleState) -> Response {
    let shared = &console.shared;
    let (count, newest) = shared.refused_at_ingest(LISTED);
    let rejected = shared.store.rejected().unwrap_or_default();
    page(
        "/console/refused",
        "Refused",
        html! {
            p.hint { (thousands(count)) " records refused at ingest, read from " code { "lake/processing-failed/" } "; the newest " (newest.len()) " below." }
            table #refused {
                thead { tr { th { "arrived" } th { "rule" } th { "reason" } th { "record id" } } }
                tbody {
                    @for r in newest.iter().rev() {
                        @let field = |k: &str| r.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
                        tr.refused-record {
                            td { (or_dash(field("approximateArrivalTimestamp").or_else(|| field("arrivedAt")).as_deref())) }
                            td.code { code { (or_dash(field("errorCode").as_deref())) } }
                            td.reason { (or_dash(field("errorMessage").as_deref())) }
                            td { code { (or_dash(field("recordId").or_else(|| field("record_id")).as_deref())) } }
                        }
                    }
                }
            }
            h2 { "Rejected by the store (" (rejected.len()) ")" }
            @if rejected.is_empty() {
                p.empty { "none" }
            } @else {
                table #rejected {
                    thead { tr { th { "at" } th { "stage" } th { "reason" } th { "source" } } }
                    tbody {
                        @for r in rejected.iter().rev().take(LISTED) {
                            tr { td { (r.rejected_at) } td { (r.stage) } td.reason { (r.reason) } td { code { (r.source_id) } } }
                        }
                    }
                }
            }
        },
    )
}

// ---------------------------------------------------------------- tester

pub(super) async fn tester() -> Response {
    page(
        "/console/tester",
        "Pattern tester",
        html! {
            form #tester hx-post="/console/tester" hx-target="#verdict"
                hx-trigger="submit, input changed delay:300ms" {
                div.pair {
                    label { "Event (JSON)"
                        textarea #tester-event name="event" rows="12" spellcheck="false" {
                            r#"{"source": "tideline", "detail-type": "OrderPlaced", "detail": {"data": {"total": 150}}}"#
                        }
                    }
                    label { "Pattern (JSON)"
                        textarea #tester-pattern name="pattern" rows="12" spellcheck="false" {
                            r#"{"detail-type": ["OrderPlaced"], "detail": {"data": {"total": [{"numeric": [">", 100]}]}}}"#
                        }
                    }
                }
                button type="submit" { "Test" }
            }
            div #verdict aria-live="polite" {}
        },
    )
}

#[derive(Deserialize)]
pub(super) struct TesterForm {
    #[serde(default)]
    event: String,
    #[serde(default)]
    pattern: String,
}

pub(super) async fn tester_verdict(Form(form): Form<TesterForm>) -> Response {
    let pattern = match Pattern::parse(form.pattern.trim()) {
        Ok(p) => p,
        Err(e) => {
            return html_response(
                html! { p.error role="alert" { "invalid pattern: " (e.to_string()) } },
            );
        }
    };
    let event = form.event.trim();
    if !event.starts_with('{') {
        return html_response(html! { p.error role="alert" { "the event must be a JSON object" } });
    }
    html_response(match pattern.explain_json(event) {
        Err(e) => html! { p.error role="alert" { "invalid event: " (e.to_string()) } },
        Ok(v) if v.matched => html! {
            p.match data-matched="true" { strong { "match" } ": every field the pattern tests matched: "
                @for (i, path) in v.tested.iter().enumerate() { @if i > 0 { ", " } code { (path) } } }
        },
        Ok(v) => html! {
            p.nomatch data-matched="false" { strong { "no match" } ": decided by " code #decided-by { (v.first_miss.unwrap_or_default()) }
                ", the first field in the pattern's order that the event fails" }
        },
    })
}
