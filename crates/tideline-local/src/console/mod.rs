//! The web console `tideline up` serves at `/`: what is inside the local
//! stack, at a glance, in a browser.
//!
//! Server-rendered HTML ([maud]: every spliced value is HTML-escaped, so event
//! data that holds markup shows as text), with htmx (vendored in `assets/`,
//! embedded in the binary) swapping fragments for the parts that change:
//! the overview and the rules poll, searches and pages swap in place. The
//! live view follows the same SSE tail as `tideline tail`
//! (`/_tideline/tail`) from a small script that writes each event with
//! `textContent` and falls back to a counter when events arrive faster than
//! it can draw. Nothing is fetched from the network, and no Node toolchain
//! is needed: `docs/decisions/0021-web-console.md` says why.
//!
//! Pages: overview (`/`), entities, live, rules, refused, pattern tester.
//! Reading pages are `GET`s; the one action, replay, is a `POST` that must
//! carry the `x-tideline-request` header (htmx sends it from `hx-headers`),
//! which a cross-site form cannot send without a CORS preflight the server
//! never grants. Every console response carries a Content-Security-Policy
//! that allows only this origin's scripts, as a second line behind escaping.
//! The server's Host check and limits apply here as on every route.

mod pages;

use crate::shared::Shared;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// htmx 2.0.11 (BSD-0-Clause, `assets/htmx.LICENSE`), from the npm package
/// `htmx.org`'s `dist/htmx.min.js`, unmodified.
const HTMX_JS: &str = include_str!("../../assets/htmx.min.js");
/// The live view and the small helpers htmx does not cover.
const CONSOLE_JS: &str = include_str!("../../assets/console.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console.css");

/// Seconds of throughput history the overview's chart shows.
const HISTORY_SECONDS: usize = 300;

/// One throughput sample: the store stage's cumulative counts at a second.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Records received by ingest so far.
    received: u64,
    /// Events stored so far (the store stage's `sent`).
    stored: u64,
}

/// The console's state: the stack, and the throughput history the
/// sampler keeps (one sample a second, the last [`HISTORY_SECONDS`]).
pub(crate) struct Console {
    shared: Arc<Shared>,
    samples: Mutex<VecDeque<Sample>>,
}

impl Console {
    fn samples(&self) -> Vec<Sample> {
        // A poisoned lock only means a sampler panicked mid-push; the samples are still usable.
        let guard = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        guard.iter().copied().collect()
    }
}

/// The console's routes, to merge into the server's router (whose Host check
/// and limits wrap them). Starts the throughput sampler, which ends with the
/// stack.
pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    let console = Arc::new(Console {
        shared: shared.clone(),
        samples: Mutex::new(VecDeque::with_capacity(HISTORY_SECONDS + 1)),
    });
    tokio::spawn(sample_throughput(console.clone()));
    Router::new()
        .route("/", get(pages::overview))
        .route("/console/overview/stats", get(pages::overview_stats))
        .route("/console/entities", get(pages::entities))
        .route("/console/entity", get(pages::entity))
        .route("/console/live", get(pages::live))
        .route("/console/pattern/check", post(pages::pattern_check))
        .route("/console/rules", get(pages::rules))
        .route("/console/rules/table", get(pages::rules_table))
        .route("/console/replay", post(pages::replay))
        .route("/console/refused", get(pages::refused))
        .route(
            "/console/tester",
            get(pages::tester).post(pages::tester_verdict),
        )
        .route(
            "/console/assets/htmx.min.js",
            get(|| async { asset(HTMX_JS, "text/javascript") }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset(CONSOLE_JS, "text/javascript") }),
        )
        .route(
            "/console/assets/console.css",
            get(|| async { asset(CONSOLE_CSS, "text/css") }),
        )
        .layer(axum::middleware::map_response(guard_headers))
        .with_state(console)
}

/// Samples the cumulative counts once a second until the stack stops.
async fn sample_throughput(console: Arc<Console>) {
    let mut stop = console.shared.stop.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let sample = Sample {
            received: console.shared.counters.transform.snapshot().received,
            stored: console.shared.counters.store.snapshot().sent,
        };
        let mut samples = console.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back(sample);
        while samples.len() > HISTORY_SECONDS + 1 {
            samples.pop_front();
        }
    }
}

/// The headers of every console response: scripts and styles only from this
/// origin (a payload that slipped past escaping still could not run), no
/// framing (clickjacking a replay button), no MIME sniffing.
async fn guard_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An HTML response.
fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An HTML error fragment with a status.
fn html_error(status: StatusCode, message: &str) -> Response {
    let mut response = html_response(html! { p.error role="alert" { (message) } });
    *response.status_mut() = status;
    response
}

/// The pages of the navigation bar: (path, title).
const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/console/entities", "Entities"),
    ("/console/live", "Live"),
    ("/console/rules", "Rules"),
    ("/console/refused", "Refused"),
    ("/console/tester", "Pattern tester"),
];

/// A whole page: head, navigation (the current page marked), `body`.
fn page(current: &str, title: &str, body: Markup) -> Response {
    html_response(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // htmx's own indicator styles would be an inline <style>,
                // which the CSP refuses; console.css has them. Error answers
                // (a refused replay, a bad field) are swapped in too, so
                // their message shows where the result would.
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"[45]..","swap":true,"error":true}]}"#;
                title { (title) " · Tideline" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/htmx.min.js" {}
                script src="/console/assets/console.js" defer {}
            }
            body {
                header {
                    span.brand { "Tideline" }
                    nav {
                        @for (path, name) in NAV {
                            @if path == current {
                                a href=(path) aria-current="page" { (name) }
                            } @else {
                                a href=(path) { (name) }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    })
}

/// Pretty-printed JSON, escaped by the caller's splice.
fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A count with thousands separators (`12,345`).
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Percent-encodes a path segment (entity ids may hold `/`, `?`, `#`, `%`):
/// everything but RFC 3986's unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The events/s chart: the per-second deltas of the stored count as an
/// inline SVG polyline (no script, no library), newest at the right.
fn throughput_chart(samples: &[Sample]) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 120.0;
    let rates: Vec<u64> = samples
        .windows(2)
        .map(|w| w[1].stored.saturating_sub(w[0].stored))
        .collect();
    let received: Vec<u64> = samples
        .windows(2)
        .map(|w| w[1].received.saturating_sub(w[0].received))
        .collect();
    let peak = rates
        .iter()
        .chain(&received)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let now = rates.last().copied().unwrap_or(0);
    let points = |series: &[u64]| -> String {
        let step = WIDTH / (HISTORY_SECONDS as f64);
        let offset = WIDTH - step * series.len() as f64;
        series
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let x = offset + step * (i as f64 + 1.0);
                let y = HEIGHT - (*r as f64 / peak as f64) * (HEIGHT - 10.0);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let minutes = rates.len().div_ceil(60);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width="600" height="120" role="img"
                aria-label=(format!("events stored per second over the last {} seconds; now {now}/s, peak {peak}/s", rates.len())) {
                line x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) stroke="#999" stroke-width="1" {}
                polyline points=(points(&received)) fill="none" stroke="#b0b7c3" stroke-width="1.5" {}
                polyline points=(points(&rates)) fill="none" stroke="#1d6fd1" stroke-width="2" {}
            }
            figcaption {
                "events/s stored (blue) and records/s received (grey), last "
                @if minutes <= 1 { (rates.len()) " s" } @else { (minutes) " min" }
                ": now " strong #rate-now { (thousands(now)) } "/s, peak " (thousands(peak)) "/s"
            }
        }
    }
}

/// Escaped HTML text for a value that may be absent.
fn or_dash(value: Option<&str>) -> Markup {
    match value {
        Some(v) if !v.is_empty() => html! { (v) },
        _ => PreEscaped("&mdash;".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_counts_grouped() {
        assert_eq!(encode_segment("order/1?x#y%"), "order%2F1%3Fx%23y%25");
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
