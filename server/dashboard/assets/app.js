// The SBM service dashboard: fetches the JSON view every few seconds and
// renders it. Data goes into the page only as text (textContent,
// attributes), never as markup.
"use strict";

(function () {
  const body = document.body;
  const viewURL = body.dataset.view;
  const refreshMS = Math.max(500, Number(body.dataset.refresh) || 5000);
  const command = body.dataset.command;
  const SVG = "http://www.w3.org/2000/svg";
  let renders = 0;
  let lastOK = null;
  let timer = null;

  // el creates an element: attrs are attributes (class, aria-*, …),
  // children strings or nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    setAttrs(e, attrs);
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
    }
  }

  const nf = new Intl.NumberFormat("en");
  function num(n) { return nf.format(Number(n) || 0); }
  function pct(n) { return (Math.round((Number(n) || 0) * 10) / 10) + "%"; }

  // ago says how long ago t was ("3 min ago"); "" for no time.
  function ago(t, now) {
    if (!t) return "";
    const s = Math.round((now - new Date(t)) / 1000);
    if (s < 0) return "in " + span(-s);
    if (s < 5) return "just now";
    return span(s) + " ago";
  }
  function span(s) {
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  // when renders a time as <time> with a relative text and the absolute
  // one as its title.
  function when(t, now, fallback) {
    if (!t) return el("span", { class: "muted" }, fallback || "never");
    const d = new Date(t);
    return el("time", { datetime: d.toISOString(), title: d.toUTCString() }, ago(t, now));
  }
  function date(t) {
    if (!t) return el("span", { class: "muted" }, "none");
    const d = new Date(t);
    return el("time", { datetime: d.toISOString(), title: d.toUTCString() }, d.toISOString().slice(0, 10));
  }
  function short(s, n) {
    s = String(s || "");
    if (s.length <= n) return el("span", { class: "mono" }, s);
    return el("span", { class: "mono", title: s }, s.slice(0, n) + "…");
  }
  // mid shortens a long ID in its middle, keeping both ends readable.
  function mid(s, head, tail) {
    s = String(s || "");
    if (s.length <= head + tail + 1) return el("span", { class: "mono" }, s);
    return el("span", { class: "mono", title: s }, s.slice(0, head) + "…" + s.slice(-tail));
  }
  function badge(text, kind) {
    return el("span", { class: "badge " + kind }, text);
  }

  const stateKind = { running: "info", paused: "warn", halted: "bad", aborted: "bad", done: "good" };

  // threshold is a rollout's failure threshold as a count, or 0.
  function threshold(r) {
    if (r.max_failures) return r.max_failures;
    if (r.max_failures_percent) return Math.ceil(r.max_failures_percent * (r.targeted || 0) / 100);
    return 0;
  }

  // mark classes a rollout: " bad" if stopped by failures or aborted,
  // " warn" if it has failures below its threshold.
  function mark(r) {
    if (r.state === "halted" || r.state === "aborted") return " bad";
    if ((r.failed || 0) > 0 && r.state !== "done") return " warn";
    return "";
  }

  function fill(table, rows, empty, cols) {
    const tb = table.tBodies[0];
    tb.replaceChildren(...rows);
    if (rows.length === 0) {
      tb.append(el("tr", { class: "empty" }, el("td", { colspan: cols }, empty)));
    }
  }

  // tiles: the summary at the top, failures in red.
  function renderTiles(v, now) {
    const rollouts = v.rollouts || [];
    const devices = v.devices || [];
    const fleet = v.fleet || {};
    const total = fleet.total || devices.length;
    const failing = fleet.failing || devices.filter((d) => d.last_report === "failure").length;
    const running = rollouts.filter((r) => r.state === "running").length;
    const halted = rollouts.filter((r) => r.state === "halted").length;
    const failedInstalls = rollouts.filter((r) => r.state !== "done" && r.state !== "aborted").reduce((a, r) => a + (r.failed || 0), 0);
    const remaining = (v.orders || []).filter((o) => o.state === "active").reduce((a, o) => a + (o.remaining || 0), 0);
    const audit = v.audit || {};
    let auditText = "not audited", auditKind = "warn";
    if (audit.last_audit) {
      auditText = audit.last_audit.ok ? "passed" : "FAILED";
      auditKind = audit.last_audit.ok ? "good" : "bad";
    }
    const tiles = [
      ["devices", "Devices", num(total), "neutral"],
      ["failing", "Devices failing", num(failing), failing > 0 ? "bad" : "good"],
      ["running", "Rollouts running", num(running), running > 0 ? "info" : "neutral"],
      ["halted", "Rollouts halted", num(halted), halted > 0 ? "bad" : "good"],
      ["failed-installs", "Failed installs (live rollouts)", num(failedInstalls), failedInstalls > 0 ? "bad" : "good"],
      ["remaining", "Units left in active orders", num(remaining), "neutral"],
      ["audit", "Audit", auditText, auditKind],
    ];
    document.getElementById("tiles").replaceChildren(...tiles.map(([id, label, value, kind]) =>
      el("li", { class: "tile " + kind, id: "tile-" + id },
        el("span", { class: "tile-value" }, value), el("span", { class: "tile-label" }, label))));
  }

  // The chart: one row per rollout, the track being the whole fleet
  // (0–100 %), the targeted share an outlined band, and within it the
  // updated, failed and downloading devices in proportion.
  function renderChart(v) {
    const rollouts = v.rollouts || [];
    const box = document.getElementById("chart-body");
    if (rollouts.length === 0) {
      box.replaceChildren(el("p", { class: "muted" }, "No rollout yet."));
      return;
    }
    const rowH = 46, top = 4, axisH = 18;
    const h = top + rollouts.length * rowH + axisH;
    const s = svg("svg", {
      width: "100%", height: h, role: "img", "aria-labelledby": "chart-title chart-desc",
      class: "rollout-chart",
    });
    s.append(svg("title", { id: "chart-title" }, "Rollout progress"));
    const desc = rollouts.map((r) => `${r.id} (${r.release}, ${r.state}): ${pct(r.percent)} of the fleet targeted, ` +
      `${num(r.updated)} of ${num(r.targeted)} updated, ${num(r.failed)} failed`).join("; ");
    s.append(svg("desc", { id: "chart-desc" }, desc));
    // Grid lines at 0, 25, 50, 75, 100 %.
    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (const g of [0, 25, 50, 75, 100]) {
      const x = g === 100 ? "99.9%" : g + "%";
      grid.append(svg("line", { x1: x, x2: x, y1: top, y2: h - axisH + 2 }));
      grid.append(svg("text", {
        x: x, y: h - 4, "text-anchor": g === 0 ? "start" : g === 100 ? "end" : "middle",
      }, g + "%"));
    }
    s.append(grid);
    rollouts.forEach((r, i) => {
      const y = top + i * rowH;
      const p = Math.max(0, Math.min(100, Number(r.percent) || 0));
      const t = Math.max(1, r.targeted || 0);
      const frac = (n) => p * Math.max(0, Math.min(n, t)) / t;
      const updated = frac(r.updated || 0);
      const failed = frac(r.failed || 0);
      const inflight = frac(Math.max(0, (r.downloaded || 0) - (r.updated || 0) - (r.failed || 0)));
      const g = svg("g", { class: "row state-" + r.state + mark(r), "data-rollout": r.id, "aria-hidden": "true" });
      const label = `${r.id} · ${r.release}${r.cohort ? " · " + r.cohort : ""} · ${r.state}`;
      g.append(svg("text", { x: 0, y: y + 13, class: "label" }, label));
      const stats = `${num(r.updated)}/${num(r.targeted)} updated` + ((r.failed || 0) > 0 ? ` · ${num(r.failed)} failed` : "");
      g.append(svg("text", { x: "100%", y: y + 13, class: "stats" + mark(r), "text-anchor": "end" }, stats));
      const by = y + 19, bh = 18;
      g.append(svg("rect", { class: "track", x: 0, y: by, width: "100%", height: bh, rx: 3 }));
      g.append(svg("rect", { class: "target", x: 0, y: by, width: p + "%", height: bh, rx: 3, "data-percent": p }));
      let x = 0;
      for (const [cls, w] of [["updated", updated], ["failed", failed], ["inflight", inflight]]) {
        g.append(svg("rect", { class: "seg " + cls, x: x + "%", y: by, width: w + "%", height: bh }));
        x += w;
      }
      g.append(svg("line", { class: "marker", x1: p + "%", x2: p + "%", y1: by - 3, y2: by + bh + 3 }));
      const right = p > 90;
      g.append(svg("text", {
        class: "pct", x: p + "%", dx: right ? -5 : 5, y: by + 13, "text-anchor": right ? "end" : "start",
      }, pct(p)));
      s.append(g);
    });
    box.replaceChildren(s);
  }

  function renderRollouts(v, now) {
    const rows = (v.rollouts || []).map((r) => {
      const max = threshold(r);
      const failedCell = el("td", { class: "num" + ((r.failed || 0) > 0 ? " bad-text" : "") }, num(r.failed));
      if (max) failedCell.append(el("span", { class: "muted" }, " / max " + num(max)));
      return el("tr", { class: "state-" + r.state + mark(r), "data-rollout": r.id },
        el("th", { scope: "row" }, mid(r.id, 12, 4)),
        el("td", {}, r.release, r.cohort ? el("span", { class: "muted" }, " · " + r.cohort) : null),
        el("td", {}, badge(r.state, stateKind[r.state] || "neutral")),
        el("td", { class: "num" }, pct(r.percent)),
        el("td", { class: "num" }, num(r.targeted)),
        el("td", { class: "num" }, num(r.downloaded)),
        el("td", { class: "num" }, num(r.updated)),
        failedCell,
        el("td", { class: "nowrap" }, when(r.started, now)));
    });
    fill(document.getElementById("rollouts"), rows, "No rollout yet.", 9);
  }

  function renderFleet(v, now) {
    const devices = v.devices || [];
    const fleet = v.fleet || {};
    const total = fleet.total || devices.length;
    const versions = (fleet.versions || []).map((x) => `${x.version || "unknown"}: ${num(x.devices)}`).join(", ");
    let text = `${num(total)} devices registered`;
    if (versions) text += ` (${versions})`;
    if (devices.length < total) text += `; ${num(devices.length)} shown`;
    document.getElementById("fleet-summary").textContent = text + ".";
    const rows = devices.map((d) => {
      const kind = d.last_report === "success" ? "good" : d.last_report === "failure" ? "bad" : "neutral";
      const report = el("td", {}, badge(d.last_report || "none", kind));
      if (d.detail) report.append(el("span", { class: "muted detail" }, " " + d.detail));
      return el("tr", { class: d.last_report === "failure" ? "bad" : "", "data-device": d.id },
        el("th", { scope: "row" }, mid(d.id, 12, 4)),
        el("td", {}, d.version || el("span", { class: "muted" }, "unknown")),
        el("td", {}, when(d.last_seen, now)),
        report);
    });
    fill(document.getElementById("devices"), rows, "No device registered yet.", 4);
  }

  function renderReleases(v, now) {
    const counts = new Map((v.fleet && v.fleet.versions || []).map((x) => [x.version, x.devices]));
    const rows = (v.releases || []).map((r) => el("tr", { "data-release": r.version },
      el("th", { scope: "row" }, r.version),
      el("td", { class: "num" }, String(r.security_counter)),
      el("td", {}, short(r.manifest_digest, 16)),
      el("td", {}, when(r.published, now)),
      el("td", { class: "num" }, counts.has(r.version) ? num(counts.get(r.version)) : "–")));
    fill(document.getElementById("releases"), rows, "No release published yet.", 5);
  }

  // usage draws an order's used/spoiled/remaining as a small stacked bar.
  function usage(o) {
    const c = Math.max(1, o.count || 0);
    const used = 100 * (o.used || 0) / c, spoiled = 100 * (o.spoiled || 0) / c;
    const label = `${num(o.used)} used, ${num(o.spoiled)} spoiled, ${num(o.remaining)} remaining of ${num(o.count)}`;
    return svg("svg", { class: "usage", width: "100%", height: 8, role: "img", "aria-label": label },
      svg("rect", { class: "track", x: 0, y: 0, width: "100%", height: 8, rx: 2 }),
      svg("rect", { class: "seg used", x: 0, y: 0, width: used + "%", height: 8 }),
      svg("rect", { class: "seg spoiled", x: used + "%", y: 0, width: spoiled + "%", height: 8 }));
  }

  function renderOrders(v, now) {
    const rows = [];
    for (const o of v.orders || []) {
      const expired = o.not_after && new Date(o.not_after) < now;
      const kind = o.state === "active" ? (expired ? "warn" : "good") : "bad";
      rows.push(el("tr", { class: "order" + (o.state !== "active" ? " revoked" : ""), "data-order": o.id },
        el("th", { scope: "row" }, mid(o.id, 8, 4), usage(o)),
        el("td", {}, badge(expired && o.state === "active" ? "expired" : o.state, kind)),
        el("td", { class: "num" }, num(o.count)),
        el("td", { class: "num" }, num(o.used)),
        el("td", { class: "num" + ((o.spoiled || 0) > 0 ? " warn-text" : "") }, num(o.spoiled)),
        el("td", { class: "num" }, num(o.remaining)),
        el("td", { class: "nowrap" }, date(o.not_after))));
      for (const l of o.lines || []) {
        rows.push(el("tr", { class: "line", "data-line": l.name },
          el("th", { scope: "row" }, el("span", { class: "muted" }, "line "), l.name),
          el("td", {}),
          el("td", { class: "num" }, num(l.count)),
          el("td", { class: "num" }, num(l.used)),
          el("td", { class: "num" + ((l.spoiled || 0) > 0 ? " warn-text" : "") }, num(l.spoiled)),
          el("td", { class: "num" }, num(l.remaining)),
          el("td", {})));
      }
    }
    fill(document.getElementById("orders"), rows, "No order loaded yet.", 7);
  }

  function renderAudit(v, now) {
    const a = v.audit || {};
    const items = [
      ["Log size", el("span", {}, num(a.log_size) + " entries")],
      ["Latest checkpoint", when(a.latest_checkpoint, now, "none yet")],
    ];
    if (a.last_audit) {
      const r = a.last_audit;
      const res = el("span", {}, badge(r.ok ? "passed" : "failed", r.ok ? "good" : "bad"), " ", when(r.time, now),
        el("span", { class: "muted" }, `, ${num(r.size)} entries`));
      if (!r.ok && r.problem) res.append(el("span", { class: "problem" }, r.problem));
      items.push(["Last audit", res]);
    } else {
      items.push(["Last audit", badge("none yet", "warn")]);
    }
    const dl = document.getElementById("audit");
    dl.replaceChildren();
    for (const [k, val] of items) dl.append(el("dt", {}, k), el("dd", {}, val));
    dl.classList.toggle("bad", !!(a.last_audit && !a.last_audit.ok));
  }

  function render(v) {
    // Relative times are counted from when the service made the view, so
    // a browser whose clock is off still reads them right.
    const gen = v.generated ? new Date(v.generated) : null;
    const now = gen && !isNaN(gen) ? gen : new Date();
    document.getElementById("service").textContent = v.service ? "· " + v.service : "";
    renderTiles(v, now);
    renderChart(v);
    renderRollouts(v, now);
    renderFleet(v, now);
    renderReleases(v, now);
    renderOrders(v, now);
    renderAudit(v, now);
    renders++;
    body.dataset.renders = String(renders);
  }

  function status(text, stale) {
    const s = document.getElementById("status");
    s.textContent = text;
    s.classList.toggle("stale", !!stale);
  }

  function signedOut() {
    const a = document.getElementById("alert");
    a.replaceChildren("Your dashboard session has ended. For a new sign-in link run ",
      el("code", {}, command), " and open the link it prints.");
    a.hidden = false;
    body.classList.add("signed-out");
    body.dataset.signedOut = "true";
    status("Signed out: not refreshing.", true);
  }

  async function refresh() {
    timer = null;
    if (document.hidden) {
      timer = setTimeout(refresh, refreshMS);
      return;
    }
    try {
      const r = await fetch(viewURL, { cache: "no-store", credentials: "same-origin", headers: { Accept: "application/json" } });
      if (r.status === 401) {
        signedOut();
        return; // no more polling: a new link is needed
      }
      if (!r.ok) throw new Error("the service answered " + r.status);
      const v = await r.json();
      render(v);
      lastOK = new Date();
      status("Updated " + lastOK.toLocaleTimeString("en-GB") + ".", false);
    } catch (e) {
      status("Could not refresh (" + e.message + ")" + (lastOK ? "; showing the view of " + lastOK.toLocaleTimeString("en-GB") : "") + ".", true);
    }
    timer = setTimeout(refresh, refreshMS);
  }

  document.getElementById("refresh-every").textContent = (refreshMS / 1000) + " s";
  document.getElementById("command").textContent = command;
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer !== null && !body.dataset.signedOut) {
      clearTimeout(timer);
      refresh();
    }
  });
  refresh();
})();
