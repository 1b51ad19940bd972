// Tideline console: the live view (Live page). Everything else is htmx.
//
// Events arrive over the SSE tail (/_tideline/tail?pattern=...). Each is
// written with textContent, never as HTML, so event data cannot inject
// markup. Drawing is bounded: at most DRAW_PER_TICK rows every TICK_MS, at
// most MAX_ROWS kept; when more arrive than that in a second, the view
// stops drawing rows and shows a counter instead, until the rate falls.
(function () {
  "use strict";
  var list = document.getElementById("live-events");
  if (!list) return;
  var state = document.getElementById("live-state");
  var form = document.getElementById("live-form");
  var textarea = document.getElementById("live-pattern");
  var pause = document.getElementById("live-pause");

  var MAX_ROWS = 200;
  var DRAW_PER_TICK = 20;
  var TICK_MS = 100;
  // Rows per second the view draws at most (DRAW_PER_TICK per tick).
  var DRAWABLE_PER_SECOND = DRAW_PER_TICK * (1000 / TICK_MS);

  var source = null;
  var queue = [];
  var received = 0;
  var skipped = 0;
  var inLastSecond = 0;
  var rate = 0;
  var counting = false;
  var paused = false;

  function render() {
    var text;
    if (counting) {
      text = "too fast to draw (" + rate + " events/s): counting — " + received + " received";
    } else if (paused) {
      text = "paused — " + received + " received";
    } else {
      text = "following — " + received + " received";
    }
    if (skipped > 0) text += ", " + skipped + " skipped (the browser fell behind the bus)";
    state.textContent = text;
    state.setAttribute("data-counting", counting ? "true" : "false");
    state.setAttribute("data-received", String(received));
  }

  function row(data) {
    var li = document.createElement("li");
    var event;
    try { event = JSON.parse(data); } catch (e) { event = null; }
    var meta = event && event.detail && event.detail.metadata || {};
    var head = document.createElement("div");
    head.className = "live-head";
    var type = document.createElement("strong");
    type.textContent = (event && event["detail-type"]) || "?";
    var where = document.createElement("span");
    where.className = "muted";
    where.textContent = " " + (meta.entity_id || "?") + " #" + (meta.sequence || "?") +
      (event && event.time ? "  " + event.time : "");
    head.appendChild(type);
    head.appendChild(where);
    var body = document.createElement("code");
    body.className = "live-data";
    var shown = event && event.detail ? JSON.stringify(event.detail.data) : data;
    body.textContent = shown.length > 400 ? shown.slice(0, 400) + "…" : shown;
    li.appendChild(head);
    li.appendChild(body);
    li.setAttribute("data-entity", meta.entity_id || "");
    return li;
  }

  function tick() {
    if (counting || paused) {
      queue.length = 0;
    } else {
      var n = Math.min(queue.length, DRAW_PER_TICK);
      for (var i = 0; i < n; i++) list.insertBefore(row(queue.shift()), list.firstChild);
      while (list.childNodes.length > MAX_ROWS) list.removeChild(list.lastChild);
    }
    render();
  }

  function everySecond() {
    rate = inLastSecond;
    inLastSecond = 0;
    // Too many to draw: count instead of queueing rows the tab cannot keep up with.
    counting = rate > DRAWABLE_PER_SECOND;
  }

  function follow(pattern) {
    if (source) source.close();
    var url = "/_tideline/tail";
    if (pattern.trim() !== "") url += "?pattern=" + encodeURIComponent(pattern);
    source = new EventSource(url);
    source.onopen = function () { render(); };
    source.onmessage = function (e) {
      received++;
      inLastSecond++;
      if (!counting && !paused && queue.length < DRAWABLE_PER_SECOND) queue.push(e.data);
    };
    source.addEventListener("lagged", function (e) {
      try { skipped += JSON.parse(e.data).skipped || 0; } catch (err) { /* keep counting */ }
    });
    source.onerror = function () {
      state.textContent = "disconnected (an invalid pattern is refused: see above); retrying…";
    };
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    list.textContent = "";
    received = 0;
    skipped = 0;
    follow(textarea.value);
  });
  pause.addEventListener("click", function () {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
  });
  setInterval(tick, TICK_MS);
  setInterval(everySecond, 1000);
  follow(textarea.value);
})();
