// Draws the report's charts as inline SVG from the recorded events in #data. No network, no
// libraries: everything the page shows is in this file.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var root = document.getElementById("charts");
  root.textContent = "";
  var SVG = "http://www.w3.org/2000/svg";
  var W = 760, H = 200, L = 56, R = 150, T = 12, B = 28;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, attrs) {
    var t = el("text", Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }
  function nice(x) {
    var steps = [1, 2, 5];
    var p = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1e-9))));
    for (var i = 0; i < 4; i++) for (var j = 0; j < 3; j++) if (steps[j] * p * Math.pow(10, i) >= x) return steps[j] * p * Math.pow(10, i);
    return x;
  }
  function fmtTime(ms) {
    if (span < 10000) return (ms / 1000).toFixed(1) + "s";
    if (span < 600000) return Math.round(ms / 1000) + "s";
    return Math.round(ms / 60000) + "m";
  }

  var last = D.duration_ms;
  ["finished", "sent", "retries", "throttled", "polls", "waves", "job_finished"].forEach(function (k) {
    D[k].forEach(function (e) { if (e[0] > last) last = e[0]; });
  });
  var span = Math.max(last, 1);
  var bucket = Math.max(10, nice(span / 60));
  var nb = Math.max(1, Math.ceil(span / bucket));
  var providers = [];
  D.providers.forEach(function (p) { if (providers.indexOf(p) < 0) providers.push(p); });
  function providerOf(job) { return providers.indexOf(D.providers[job]); }
  function buckets() { var a = []; for (var i = 0; i < nb; i++) a.push(0); return a; }
  function at(t) { return Math.min(nb - 1, Math.floor(t / bucket)); }

  // A chart: series of {name, kind: "line" | "step" | "bar", pts: [[t, y]], base?: [y0]}.
  function chart(id, title, unit, series, note) {
    var fig = document.createElement("figure");
    fig.id = id;
    var cap = document.createElement("figcaption");
    cap.textContent = title;
    fig.appendChild(cap);
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": title }, fig);
    var ymax = 0;
    series.forEach(function (s) {
      s.pts.forEach(function (p, i) {
        var top = p[1] + (s.base ? s.base[i] : 0);
        if (top > ymax) ymax = top;
      });
    });
    ymax = nice(Math.max(ymax, 1) * 1.05);
    var x = function (t) { return L + (W - L - R) * (t / span); };
    var y = function (v) { return H - B - (H - T - B) * (v / ymax); };
    var grid = el("g", { class: "grid" }, svg);
    for (var g = 0; g <= 4; g++) {
      var v = (ymax * g) / 4;
      el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v) }, grid);
      text(grid, L - 6, y(v) + 4, (v >= 100 ? Math.round(v) : +v.toFixed(1)) + unit, { "text-anchor": "end" });
    }
    for (var k = 0; k <= 5; k++) {
      var tt = (span * k) / 5;
      text(grid, x(tt), H - 8, fmtTime(tt), { "text-anchor": "middle" });
    }
    D.waves.forEach(function (w) {
      if (w[2] < 2) return;
      var line = el("line", { class: "wave", x1: x(w[0]), x2: x(w[0]), y1: T, y2: H - B }, svg);
      el("title", {}, line).textContent = D.jobs[w[1]] + ": wave " + w[2] + " of " + w[3];
    });
    var drawn = 0;
    series.forEach(function (s, n) {
      var color = COLORS[n % COLORS.length];
      if (s.kind === "bar") {
        var bw = Math.max(1, ((W - L - R) * bucket) / span - 1);
        s.pts.forEach(function (p, i) {
          if (p[1] <= 0) return;
          var y0 = s.base ? s.base[i] : 0;
          el("rect", { class: "bar", x: x(p[0]), y: y(y0 + p[1]), width: bw, height: y(y0) - y(y0 + p[1]), fill: color }, svg);
          drawn++;
        });
      } else if (s.pts.length) {
        var d = "";
        s.pts.forEach(function (p, i) {
          if (s.kind === "step" && i > 0) d += "L" + x(p[0]).toFixed(1) + "," + y(s.pts[i - 1][1]).toFixed(1);
          d += (i ? "L" : "M") + x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1);
        });
        el("path", { class: "series", d: d, stroke: color, fill: "none" }, svg);
        drawn++;
      }
      var ly = T + 14 * n + 8;
      el("rect", { x: W - R + 10, y: ly - 8, width: 10, height: 10, fill: color }, svg);
      text(svg, W - R + 24, ly + 1, s.name);
    });
    fig.setAttribute("data-drawn", drawn);
    if (!drawn || note) {
      var p = document.createElement("p");
      p.className = "note";
      p.textContent = note || "Nothing to show in this run.";
      fig.appendChild(p);
    }
    root.appendChild(fig);
  }

  function times(values) {
    return values.map(function (v, i) { return [i * bucket, v]; });
  }

  // Actions in flight: from each final state's time and the action's duration.
  var edges = [];
  D.finished.forEach(function (f) {
    if (f[1] > 0) { edges.push([f[0] - f[1], 1]); edges.push([f[0], -1]); }
  });
  edges.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
  var inflight = [[0, 0]], now = 0;
  edges.forEach(function (e) { now += e[1]; inflight.push([Math.max(0, e[0]), now]); });
  inflight.push([span, now]);
  chart("in-flight", "Actions in flight (sent, not yet final)", "", [{ name: "in flight", kind: "step", pts: inflight }]);

  // Throughput: actions ended per second, good and bad stacked.
  var ok = buckets(), bad = buckets();
  D.finished.forEach(function (f) {
    if (f[3] === 2) return;
    (f[3] >= 3 ? bad : ok)[at(f[0])] += 1000 / bucket;
  });
  chart("throughput", "Throughput (actions ended per second)", "/s", [
    { name: "succeeded", kind: "bar", pts: times(ok) },
    { name: "failed / unknown", kind: "bar", pts: times(bad), base: ok }
  ]);

  // Latency percentiles of the actions that ended in each interval.
  var lat = []; for (var i = 0; i < nb; i++) lat.push([]);
  D.finished.forEach(function (f) { if (f[1] > 0) lat[at(f[0])].push(f[1]); });
  function pct(q) {
    var pts = [];
    lat.forEach(function (a, i) {
      if (!a.length) return;
      a.sort(function (m, n) { return m - n; });
      pts.push([i * bucket + bucket / 2, a[Math.min(a.length - 1, Math.floor(q * a.length))]]);
    });
    return pts;
  }
  chart("latency", "Latency (time per action, from send to final state)", "ms", [
    { name: "p50", kind: "line", pts: pct(0.5) },
    { name: "p90", kind: "line", pts: pct(0.9) },
    { name: "p99", kind: "line", pts: pct(0.99) }
  ]);

  function perProvider(events, id, title) {
    var series = providers.map(function (p) { return { name: p, kind: "bar", pts: [], counts: buckets() }; });
    events.forEach(function (e) { series[Math.max(0, providerOf(e[1]))].counts[at(e[0])] += 1; });
    var base = buckets();
    var shown = series.map(function (s) {
      var b = base.slice();
      s.counts.forEach(function (c, i) { base[i] += c; });
      return { name: s.name + " (" + s.counts.reduce(function (a, c) { return a + c; }, 0) + ")", kind: "bar", pts: times(s.counts), base: b };
    });
    chart(id, title, "", shown);
  }
  perProvider(D.retries, "retries", "Retries per provider (per " + fmtTime(bucket) + ")");
  perProvider(D.throttled, "throttled", "HTTP 429 answers per provider (per " + fmtTime(bucket) + ")");

  // Waves: one row per job, one bar per wave from its start to the next (or the job's end).
  var fig = document.createElement("figure");
  fig.id = "waves";
  var cap = document.createElement("figcaption");
  cap.textContent = "Jobs and their waves";
  fig.appendChild(cap);
  var rows = D.jobs.length, rh = 22;
  var svg = el("svg", { viewBox: "0 0 " + W + " " + (rows * rh + B), width: W, height: rows * rh + B, role: "img", "aria-label": "waves" }, fig);
  var xs = function (t) { return L + 90 + (W - L - 90 - R) * (t / span); };
  var bars = 0;
  D.jobs.forEach(function (job, j) {
    var y0 = j * rh + 4;
    text(svg, L + 84, y0 + 13, job, { "text-anchor": "end" });
    var start = D.job_started.filter(function (e) { return e[1] === j; }).map(function (e) { return e[0]; })[0];
    var end = D.job_finished.filter(function (e) { return e[1] === j; }).map(function (e) { return e[0]; })[0];
    if (start === undefined) return;
    if (end === undefined) end = span;
    var waves = D.waves.filter(function (w) { return w[1] === j; });
    if (!waves.length) waves = [[start, j, 1, 1, 0]];
    waves.forEach(function (w, k) {
      var until = k + 1 < waves.length ? waves[k + 1][0] : end;
      var r = el("rect", { class: "wave-bar", x: xs(w[0]), y: y0, width: Math.max(2, xs(until) - xs(w[0]) - 1), height: rh - 6, fill: COLORS[k % COLORS.length] }, svg);
      el("title", {}, r).textContent = job + ": wave " + w[2] + " of " + w[3] + " (" + w[4] + " actions)";
      if (xs(until) - xs(w[0]) > 40) text(svg, xs(w[0]) + 4, y0 + 12, "wave " + w[2] + "/" + w[3], { class: "on-bar" });
      bars++;
    });
  });
  for (var q = 0; q <= 5; q++) text(svg, xs((span * q) / 5), rows * rh + 18, fmtTime((span * q) / 5), { "text-anchor": "middle" });
  fig.setAttribute("data-drawn", bars);
  root.appendChild(fig);
  if (D.stopping !== null) {
    var p = document.createElement("p");
    p.className = "note";
    p.textContent = "Interrupted at " + fmtTime(D.stopping) + ": nothing was sent after that.";
    root.appendChild(p);
  }
  document.body.setAttribute("data-charts", "drawn");
})();
