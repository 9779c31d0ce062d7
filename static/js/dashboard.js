/* The margin dashboard, live: applies pushes from ws/dashboard/<account>/ in place.
 *
 * - On every (re)connect it re-reads the JSON snapshot, so nothing pushed while
 *   the socket was down is missed (pushes are hints; the snapshot is the truth).
 * - "margin" pushes update the gauge and the summary at once; the breakdown,
 *   perps and Deposit are re-read from the snapshot: soon after a change of
 *   cash (a fill, a deposit) or an order / margin-call push, and at most every
 *   TICK_REFRESH_MS while only prices move.
 * - The socket is PortalPage.liveSocket: it reconnects with exponential backoff and
 *   jitter; 4401 / 4403 stop it, and so does a snapshot read answered 401.
 * - "Prices delayed since …": the banner follows the snapshot's and the pushes'
 *   `stale` flag; with no news for the policy's stale age (a stopped feed sends
 *   no pushes), the snapshot is re-read every STALE_CHECK_MS to learn it.
 * - #live-status[data-socket] tells tests and people the socket's state:
 *   connecting | open | reconnecting | unauthorized | forbidden.
 *
 * Numbers are written as accounts/templatetags/portal_format.py writes them
 * (exact decimal strings, rounded half up), and every figure keeps its raw
 * value in data-value. A figure or table cell whose text a live update changes
 * gets the class "value-changed" for CHANGED_MS (dashboard.css: a short fade, or
 * a plain highlight under prefers-reduced-motion).
 *
 * Charts are hand-drawn SVG, not a library: three small pictures (the gauge, the
 * health history with its zones, equity and net deposits over time) need ~300
 * lines, where the small well-kept libraries (uPlot, Chart.js) add 50–200 kB to
 * serve, a canvas that the CSP, the zoom and screen readers handle less well than
 * SVG text, and their own tick and time formatting beside PortalFormat's. Each
 * chart's viewBox is sized to its rendered width (1 unit = 1 CSS pixel), so axis
 * labels keep their 12 px on a phone; charts are redrawn when the width changes.
 */
(function () {
  "use strict";

  var TICK_REFRESH_MS = 10000;
  var STALE_CHECK_MS = 5000;
  var SOON_MS = 250;
  var HISTORY_MAX = 500;
  var LIVE_POINT_EVERY_MS = 5000;
  var GAUGE_MAX = 3;
  var CHART_MAX = 5; // higher health (and ∞) sits on the top line, so the zones stay readable
  var CHANGED_MS = 1500;

  var configNode = document.getElementById("dashboard-config");
  var root = document.getElementById("dashboard");
  if (!configNode || !root) return;
  var config = JSON.parse(configNode.textContent);
  var snapshot = JSON.parse(document.getElementById("dashboard-snapshot").textContent);
  var listeners = [];
  var rendered = false; // after the first render, changed values are highlighted

  // --- Formatting: the one layer, static/js/format.js ----------------------------

  var format = window.PortalFormat;
  var page = window.PortalPage;
  var isBlank = format.isBlank;

  function positive(value) {
    return !isBlank(value) && Number(value) > 0;
  }

  function statusLabel(status, borrowing) {
    if (!borrowing) return "No borrowing";
    return { healthy: "Healthy", caution: "Caution", margin_call: "Margin call" }[status] || status;
  }

  // --- DOM helpers (the shared ones are window.PortalPage's, static/js/page.js) ------

  // A figure of the dashboard (or of `scope`).
  function field(name, scope) {
    return page.field(name, scope || root);
  }

  // Highlight a value a live update changed (not on the first render).
  function flash(node) {
    if (!rendered || !node) return;
    node.classList.remove("value-changed");
    void node.offsetWidth; // restart the fade when it changes again within CHANGED_MS
    node.classList.add("value-changed");
    clearTimeout(node._changedTimer);
    node._changedTimer = setTimeout(function () {
      node.classList.remove("value-changed");
    }, CHANGED_MS);
  }

  // A figure; a changed text is highlighted unless `quiet`.
  function setField(name, value, text, scope, quiet) {
    page.setField(name, value, text, scope || root, quiet ? null : flash);
  }

  function signClass(value) {
    return "sign-" + format.sign(value);
  }

  function cell(name, value, text, numeric, extraClass) {
    return page.el("td", {
      class: (numeric ? "num" : "") + (extraClass ? " " + extraClass : ""),
      "data-field": name,
      "data-value": isBlank(value) ? "" : String(value),
      text: text,
    });
  }

  function pnlCell(value) {
    return cell("pnl", value, format.amountSigned(value), true, "pnl " + signClass(value));
  }

  // The texts of a table body's cells by row and field, to highlight what changed.
  function cellTexts(body) {
    var texts = {};
    body.querySelectorAll("tr[data-position-id] [data-field]").forEach(function (node) {
      var row = node.closest("tr").getAttribute("data-position-id");
      texts[row + "/" + node.getAttribute("data-field")] = node.textContent;
    });
    return texts;
  }

  function flashChanged(body, before) {
    body.querySelectorAll("tr[data-position-id] [data-field]").forEach(function (node) {
      var key = node.closest("tr").getAttribute("data-position-id") + "/" + node.getAttribute("data-field");
      if (key in before && before[key] !== node.textContent) flash(node);
    });
  }

  // --- Gauge -----------------------------------------------------------------------

  var GX = 120, GY = 122, GR = 86; // the gauge's centre and the arc's radius (viewBox 240 × 150)

  function gaugePoint(health, radius) {
    var angle = Math.PI * (1 - Math.min(Math.max(health, 0), GAUGE_MAX) / GAUGE_MAX);
    return [GX + radius * Math.cos(angle), GY - radius * Math.sin(angle)];
  }

  function arc(from, to, radius) {
    var a = gaugePoint(from, radius);
    var b = gaugePoint(to, radius);
    return "M" + a[0].toFixed(2) + " " + a[1].toFixed(2) + " A" + radius + " " + radius +
      " 0 0 1 " + b[0].toFixed(2) + " " + b[1].toFixed(2);
  }

  // "scale", "above" (≥ 3: the needle at the stop, marked "≥ 3.0") or "unbounded" (no
  // borrowing: "∞ — no borrowing", no needle): figures.gauge_out's rule.
  function gaugeState(summary) {
    if (!summary.borrowing || isBlank(summary.health)) return "unbounded";
    return Number(summary.health) >= GAUGE_MAX ? "above" : "scale";
  }

  var GAUGE_MARKERS = { unbounded: "∞ — no borrowing", above: "≥ 3.0", scale: "" };

  function drawGauge(summary, thresholds) {
    var gauge = document.getElementById("health-gauge");
    if (!gauge) return;
    page.clear(gauge);
    var maintenance = Number(thresholds.maintenance);
    var initial = Number(thresholds.initial);
    var healthy = Number(thresholds.healthy);
    [
      [0, maintenance, "zone-red"],
      [maintenance, healthy, "zone-yellow"],
      [healthy, GAUGE_MAX, "zone-green"],
    ].forEach(function (zone) {
      gauge.appendChild(page.svg("path", { d: arc(zone[0], zone[1], GR), class: "gauge-zone " + zone[2] }));
    });
    // Ticks and their labels: 0, maintenance, initial, healthy, 3.
    [[0, "0"], [maintenance, format.fixed(thresholds.maintenance, 1)],
     [initial, format.fixed(thresholds.initial, 1)], [healthy, format.fixed(thresholds.healthy, 1)],
     [GAUGE_MAX, format.fixed(String(GAUGE_MAX), 1)]].forEach(function (tick) {
      var inner = gaugePoint(tick[0], GR - 10);
      var outer = gaugePoint(tick[0], GR + 10);
      gauge.appendChild(page.svg("line", {
        x1: inner[0].toFixed(2), y1: inner[1].toFixed(2), x2: outer[0].toFixed(2), y2: outer[1].toFixed(2),
        class: "gauge-tick",
      }));
      var at = gaugePoint(tick[0], GR + 20);
      var anchor = tick[0] < GAUGE_MAX * 0.4 ? "end" : tick[0] > GAUGE_MAX * 0.6 ? "start" : "middle";
      if (tick[0] === 0 || tick[0] === GAUGE_MAX) anchor = "middle";
      gauge.appendChild(page.svg("text", {
        x: at[0].toFixed(1), y: (tick[0] === 0 || tick[0] === GAUGE_MAX ? at[1] + 16 : at[1] + 4).toFixed(1),
        "text-anchor": anchor, class: "gauge-label", "data-tick": String(tick[0]),
      }, tick[1]));
    });
    var state = gaugeState(summary);
    gauge.setAttribute("data-gauge", state);
    if (state !== "unbounded") {
      var tip = gaugePoint(Number(summary.health), GR - 14);
      gauge.appendChild(page.svg("line", {
        x1: GX, y1: GY, x2: tip[0].toFixed(2), y2: tip[1].toFixed(2), class: "gauge-needle",
        "data-health": String(summary.health),
      }));
      gauge.appendChild(page.svg("circle", { cx: GX, cy: GY, r: 5, class: "gauge-hub" }));
    }
    if (state === "above") {
      // Past the stop: an arrowhead beyond the end of the scale.
      var end = gaugePoint(GAUGE_MAX, GR);
      gauge.appendChild(page.svg("path", {
        d: "M" + (end[0] - 9) + " " + (end[1] + 4) + " l9 10 l9 -10 z", class: "gauge-offscale-mark",
      }));
    } else if (state === "unbounded") {
      gauge.appendChild(page.svg("text", {
        x: GX, y: GY - 18, "text-anchor": "middle", class: "gauge-infinity",
      }, "∞"));
    }
    gauge.setAttribute("aria-label", "Margin Health gauge, 0 to " + GAUGE_MAX + ": " +
      (state === "unbounded" ? "no borrowing (unbounded)" : format.ratio(summary.health) +
        (state === "above" ? ", above the scale" : "")));
    var card = document.getElementById("margin-health");
    if (card) card.setAttribute("data-gauge", state);
    var marker = field("gauge_marker");
    if (marker) {
      marker.setAttribute("data-value", state);
      marker.textContent = GAUGE_MARKERS[state];
      marker.hidden = !GAUGE_MARKERS[state];
    }
  }

  // --- Charts: shared pieces ----------------------------------------------------------

  // The chart #id emptied for `points` points, its viewBox sized to its rendered
  // width (1 unit = 1 CSS px: 12 px labels on any screen): {chart, width, height};
  // null when the page has no such chart.
  function chartStart(id, points) {
    var chart = document.getElementById(id);
    if (!chart) return null;
    page.clear(chart);
    chart.setAttribute("data-points", String(points));
    var width = Math.round(chart.getBoundingClientRect().width) || 640;
    width = Math.max(280, width);
    var height = width < 480 ? 200 : 240;
    chart.setAttribute("viewBox", "0 0 " + width + " " + height);
    return { chart: chart, width: width, height: height };
  }

  // The history's times (ms) from t0 to t1 and x(t) across [left, width - right]
  // (a single point sits in the middle).
  function timeScale(history, width, left, right) {
    var times = history.map(function (point) { return Date.parse(point.ts); });
    var t0 = times[0], t1 = times[times.length - 1];
    return {
      times: times,
      t0: t0,
      t1: t1,
      x: function (t) {
        return t1 === t0 ? (left + width - right) / 2 : left + (width - left - right) * (t - t0) / (t1 - t0);
      },
    };
  }

  // Time ticks along the scale: labels in the reader's zone, the zone named once.
  function timeAxis(chart, scale, yBase, width, left, right) {
    var t0 = scale.t0, t1 = scale.t1, x = scale.x;
    var span = t1 - t0;
    var count = span > 0 ? Math.max(2, Math.min(6, Math.floor((width - left - right) / 110) + 1)) : 1;
    var previous = null;
    for (var i = 0; i < count; i += 1) {
      var t = count === 1 ? t0 : t0 + span * i / (count - 1);
      var label = span >= 36 * 3600 * 1000 ? format.day(t) :
        span >= 20 * 3600 * 1000 ? format.day(t) + " " + format.clock(t).slice(0, 5) :
        format.clock(t).slice(0, span >= 10 * 60 * 1000 ? 5 : 8);
      var anchor = count === 1 ? "middle" : i === 0 ? "start" : i === count - 1 ? "end" : "middle";
      if (label === previous) continue; // a short span: one label per distinct time
      previous = label;
      chart.appendChild(page.svg("line", {
        x1: x(t).toFixed(1), x2: x(t).toFixed(1), y1: yBase, y2: yBase + 4, class: "axis-tick",
      }));
      chart.appendChild(page.svg("text", {
        x: x(t).toFixed(1), y: yBase + 17, "text-anchor": anchor, class: "axis",
      }, label));
    }
    chart.appendChild(page.svg("text", {
      x: width - right, y: yBase + 33, "text-anchor": "end", class: "axis axis-title",
    }, "Time (" + (format.zone(t1) || "local") + ")"));
  }

  // --- Health-history chart ----------------------------------------------------------

  function drawChart(history, thresholds) {
    var box = chartStart("health-chart", history.length);
    if (!box) return;
    var chart = box.chart;
    var W = box.width, H = box.height, left = 44, right = 10, top = 10, bottom = 42;
    // The scale: 0 to 3, or up to the highest health shown (at most CHART_MAX); no
    // borrowing (unbounded) and anything higher sit on the top line.
    var highest = history.reduce(function (max, point) {
      return isBlank(point.health) ? max : Math.max(max, Number(point.health));
    }, 0);
    var topValue = Math.min(CHART_MAX, Math.max(GAUGE_MAX, Math.ceil(highest)));
    var y = function (health) {
      var value = isBlank(health) ? topValue : Math.min(Number(health), topValue);
      return top + (H - top - bottom) * (1 - Math.max(value, 0) / topValue);
    };
    var maintenance = Number(thresholds.maintenance), healthy = Number(thresholds.healthy);
    // The zones: margin call (below maintenance), caution, healthy.
    [[0, maintenance, "band-call", "margin call"], [maintenance, healthy, "band-caution", "caution"],
     [healthy, topValue, "band-healthy", "healthy"]].forEach(function (band) {
      chart.appendChild(page.svg("rect", {
        x: left, width: W - left - right, y: y(band[1]).toFixed(1),
        height: (y(band[0]) - y(band[1])).toFixed(1), class: "band " + band[2], "data-zone": band[3],
      }));
    });
    // Labels at least 14 px apart: maintenance and healthy first, initial if it fits.
    var labelled = [y(0), y(topValue) + 6];
    [[thresholds.maintenance, "line-red"], [thresholds.healthy, "line-green"],
     [thresholds.initial, "line-orange"]].forEach(function (line) {
      var ly = y(line[0]);
      chart.appendChild(page.svg("line", {
        x1: left, x2: W - right, y1: ly.toFixed(1), y2: ly.toFixed(1), class: "threshold " + line[1],
      }));
      if (labelled.some(function (other) { return Math.abs(other - ly) < 14; })) return;
      labelled.push(ly);
      chart.appendChild(page.svg("text", {
        x: left - 6, y: (ly + 4).toFixed(1), class: "axis", "text-anchor": "end",
      }, format.fixed(line[0], 1)));
    });
    chart.appendChild(page.svg("text", { x: left - 6, y: y(0) + 4, class: "axis", "text-anchor": "end" }, "0"));
    chart.appendChild(page.svg("text", {
      x: left - 6, y: y(topValue) + 10, class: "axis", "text-anchor": "end",
    }, "≥" + topValue));
    chart.appendChild(page.svg("line", {
      x1: left, x2: W - right, y1: y(0), y2: y(0), class: "axis-line",
    }));
    if (!history.length) return;
    var time = timeScale(history, W, left, right);
    var x = time.x;
    chart.appendChild(page.svg("path", {
      d: page.svgPath(history.map(function (point, i) { return [x(time.times[i]), y(point.health)]; })),
      class: "health-line",
    }));
    var last = history[history.length - 1];
    chart.appendChild(page.svg("circle", {
      cx: x(time.t1).toFixed(1), cy: y(last.health).toFixed(1), r: 4, class: "health-dot status-" + last.status,
    }));
    timeAxis(chart, time, H - bottom, W, left, right);
  }

  // --- Equity and P&L chart ------------------------------------------------------------

  // Exact differences of 6-decimal USDC strings, in micro-USDC (BigInt): no float drift.
  function micro(value) {
    var text = String(value).trim();
    var negative = text.charAt(0) === "-";
    var parts = text.replace(/^[+-]/, "").split(".");
    var fraction = ((parts[1] || "") + "000000").slice(0, 6);
    var units = BigInt(parts[0] || "0") * 1000000n + BigInt(fraction);
    return negative ? -units : units;
  }

  function fromMicro(units) {
    var negative = units < 0n;
    var abs = negative ? -units : units;
    var fraction = String(abs % 1000000n);
    while (fraction.length < 6) fraction = "0" + fraction;
    return (negative ? "-" : "") + String(abs / 1000000n) + "." + fraction;
  }

  function drawEquity(history) {
    var box = chartStart("equity-chart", history.length);
    if (!box) return;
    var chart = box.chart;
    var headline = field("pnl_headline");
    var W = box.width, H = box.height, left = 64, right = 10, top = 24, bottom = 42;
    if (!history.length) {
      if (headline) headline.textContent = "No history yet: a point is recorded whenever the figures move.";
      return;
    }
    var custodial = !isBlank(history[0].net_deposits);
    var values = [];
    history.forEach(function (point) {
      values.push(Number(point.adjusted_equity));
      if (custodial && !isBlank(point.net_deposits)) values.push(Number(point.net_deposits));
    });
    var low = Math.min.apply(null, values), high = Math.max.apply(null, values);
    var pad = Math.max((high - low) * 0.08, Math.abs(high) * 0.01, 1);
    low -= pad;
    high += pad;
    var y = function (value) {
      return top + (H - top - bottom) * (1 - (Number(value) - low) / (high - low));
    };
    for (var i = 0; i <= 3; i += 1) {
      var v = low + (high - low) * i / 3;
      var ly = y(v).toFixed(1);
      chart.appendChild(page.svg("line", { x1: left, x2: W - right, y1: ly, y2: ly, class: "grid" }));
      chart.appendChild(page.svg("text", {
        x: left - 6, y: Number(ly) + 4, class: "axis", "text-anchor": "end",
      }, format.fixed(v.toFixed(2), Math.abs(high - low) < 10 ? 2 : 0)));
    }
    chart.appendChild(page.svg("text", { x: 4, y: 13, class: "axis axis-title" }, "USDC"));
    var time = timeScale(history, W, left, right);
    var x = time.x;
    if (custodial) {
      // Net deposits change in steps (a deposit lands at once).
      var steps = [];
      history.forEach(function (point, k) {
        if (isBlank(point.net_deposits)) return;
        if (steps.length) steps.push([x(time.times[k]), steps[steps.length - 1][1]]);
        steps.push([x(time.times[k]), y(point.net_deposits)]);
      });
      chart.appendChild(page.svg("path", { d: page.svgPath(steps), class: "deposits-line" }));
    }
    chart.appendChild(page.svg("path", {
      d: page.svgPath(history.map(function (point, k) { return [x(time.times[k]), y(point.adjusted_equity)]; })),
      class: "equity-line",
    }));
    var last = history[history.length - 1];
    chart.appendChild(page.svg("circle", {
      cx: x(time.t1).toFixed(1), cy: y(last.adjusted_equity).toFixed(1), r: 4, class: "equity-dot",
    }));
    timeAxis(chart, time, H - bottom, W, left, right);
    if (!headline) return;
    var change = custodial ? last.equity_change :
      fromMicro(micro(last.adjusted_equity) - micro(history[0].adjusted_equity));
    var parts = [
      document.createTextNode("Since " + format.when(history[0].ts) + ": " +
        (custodial ? "Adjusted Equity, net of deposits and withdrawals, " : "risk-adjusted value ")),
      page.el("strong", {
        class: "pnl " + signClass(change), "data-field": "equity_change", "data-value": String(change),
        text: format.moneySigned(change),
      }),
    ];
    // The open positions' P&L at market prices (the tables' column), summed exactly.
    var rows = (snapshot.breakdown || []).concat(snapshot.perps || []);
    var open = rows.filter(function (row) { return !isBlank(row.pnl); });
    if (open.length) {
      var total = fromMicro(open.reduce(function (sum, row) { return sum + micro(row.pnl); }, 0n));
      parts.push(document.createTextNode(" · open positions' P&L now "));
      parts.push(page.el("strong", {
        class: "pnl " + signClass(total), "data-field": "open_pnl", "data-value": total,
        text: format.moneySigned(total),
      }));
    }
    headline.replaceChildren.apply(headline, parts);
  }

  // --- Rendering ---------------------------------------------------------------------

  function renderSummary(summary, asOf) {
    setField("deposit", summary.deposit, format.money(summary.deposit));
    setField("used_margin", summary.used_margin, format.money(summary.used_margin));
    setField("adjusted_equity", summary.adjusted_equity, format.money(summary.adjusted_equity));
    setField("available_margin", summary.available_margin, format.money(summary.available_margin));
    setField("cash", summary.cash, format.money(summary.cash));
    setField("margin_utilization", summary.margin_utilization, format.percent(summary.margin_utilization));
    if ("collateral_value" in summary) {
      setField("collateral_value", summary.collateral_value, format.money(summary.collateral_value));
      setField("diversification", summary.diversification, format.ratio(summary.diversification));
    }
    setField("health", summary.health, format.ratio(summary.health, "∞"));
    setField("status", summary.status, statusLabel(summary.status, summary.borrowing));
    if (snapshot.link) {
      setField("venue_cash", snapshot.link.cash,
        isBlank(snapshot.link.cash) ? "not reported by the venue" : format.money(snapshot.link.cash));
    }
    var card = document.getElementById("margin-health");
    if (card) {
      card.setAttribute("data-status", summary.status);
      card.setAttribute("data-borrowing", summary.borrowing ? "true" : "false");
    }
    var banner = document.getElementById("margin-call-banner");
    if (banner) setField("banner_health", summary.health, format.ratio(summary.health, "∞"), banner);
    var asOfNode = field("as_of");
    if (asOfNode) {
      asOfNode.setAttribute("datetime", asOf);
      asOfNode.textContent = format.when(asOf);
    }
    root.setAttribute("data-as-of", asOf);
    drawGauge(summary, snapshot.thresholds);
  }

  // A row's "Close…" button (custodial accounts: the broker closes for them); the
  // panel it opens is static/js/close-panel.js's.
  function closeCell(row) {
    if (root.getAttribute("data-account-kind") !== "custodial") return page.el("td");
    return page.el("td", {}, [
      page.el("button", {
        type: "button",
        class: "button button--small button--secondary",
        "data-action": "close-position",
        "aria-expanded": "false",
      }, [
        document.createTextNode("Close"),
        page.el("span", { class: "visually-hidden", text: " " + row.symbol }),
        document.createTextNode("…"),
      ]),
    ]);
  }

  // Re-draw a positions table body: a row per position (its cells from `cellsOf`, then
  // its Close… button) or the empty line, highlighting the cells a live update changed.
  function renderRows(bodyId, rows, cellsOf, emptyText) {
    var body = document.getElementById(bodyId);
    if (!body) return;
    var before = cellTexts(body);
    var fresh = rows.map(function (row) {
      return page.el("tr", { "data-position-id": String(row.position_id), "data-symbol": row.symbol },
        cellsOf(row).concat([closeCell(row)]));
    });
    if (!fresh.length) {
      fresh = [page.el("tr", { class: "empty" }, [page.el("td", { colspan: "10", text: emptyText })])];
    }
    body.replaceChildren.apply(body, fresh);
    flashChanged(body, before);
  }

  function renderBreakdown(rows) {
    renderRows("breakdown-rows", rows, function (row) {
      return [
        page.el("th", { scope: "row", "data-field": "symbol" }, [
          page.el("span", { class: "symbol", text: row.symbol }),
          document.createTextNode(" "),
          page.el("span", { class: "muted small", text: row.title }),
        ]),
        cell("side", row.outcome, String(row.outcome || "").toUpperCase(), false),
        cell("quantity", row.quantity, format.qty(row.quantity), true),
        cell("average_price", row.average_price, format.cents(row.average_price), true),
        cell("collateral_price", row.collateral_price, format.cents(row.collateral_price), true),
        cell("value", row.value, format.amount(row.value), true),
        cell("haircut", row.haircut, format.percent(row.haircut), true),
        cell("contribution", row.contribution, format.amount(row.contribution), true),
        pnlCell(row.pnl),
      ];
    }, "No prediction-market positions.");
  }

  function renderPerps(rows) {
    renderRows("perp-rows", rows, function (row) {
      return [
        page.el("th", { scope: "row", "data-field": "symbol", text: row.symbol }),
        cell("side", row.side, row.side.charAt(0).toUpperCase() + row.side.slice(1), false),
        cell("quantity", row.quantity, format.qty(row.quantity, 6), true),
        cell("average_price", row.average_price, format.perpPrice(row.average_price), true),
        cell("mark_price", row.mark_price, format.perpPrice(row.mark_price), true),
        cell("leverage", row.leverage, row.leverage + "x", true),
        cell("isolated_margin", row.isolated_margin, format.amount(row.isolated_margin), true),
        pnlCell(row.pnl),
        cell("liquidation_price", row.liquidation_price, format.perpPrice(row.liquidation_price), true),
      ];
    }, "No perpetual positions.");
  }

  function renderMarginCall(call, summary) {
    var banner = document.getElementById("margin-call-banner");
    if (!banner) return;
    var open = call && call.status === "open";
    banner.hidden = !open;
    banner.setAttribute("data-margin-call", open ? "open" : "none");
    if (open && !isBlank(call.health)) {
      setField("banner_health", call.health, format.ratio(call.health, "∞"), banner);
    } else if (summary) {
      setField("banner_health", summary.health, format.ratio(summary.health, "∞"), banner);
    }
  }

  function renderPrices(prices) {
    var banner = document.getElementById("prices-banner");
    if (!banner || !prices) return;
    banner.hidden = !prices.stale;
    banner.setAttribute("data-stale", prices.stale ? "true" : "false");
    var since = field("stale_since_text", banner);
    since.textContent = "";
    if (prices.stale_since) {
      var time = page.el("time", { datetime: prices.stale_since }, [
        document.createTextNode(format.when(prices.stale_since)),
      ]);
      since.appendChild(document.createTextNode(" since "));
      since.appendChild(time);
    }
    if (prices.symbols) field("stale_symbols", banner).textContent = prices.symbols.join(", ");
  }

  // A linked account's link (the Portfolio risk header): its status and last sync.
  function renderLink(link) {
    var box = root.querySelector(".link-status");
    if (!box || !link) return;
    box.setAttribute("data-link-status", link.status);
    var badge = field("link_status", box);
    if (badge) badge.className = "badge badge--" + link.status;
    setField("link_status", link.status, link.status_label, box);
    setField("link_synced", link.last_synced_at,
      link.last_synced_at ? "last synced " + format.when(link.last_synced_at) : "not synced yet", box);
  }

  function renderHistory() {
    drawChart(snapshot.history || [], snapshot.thresholds);
    drawEquity(snapshot.history || []);
    var note = field("history_note");
    if (note) {
      note.textContent = (snapshot.history || []).length ? "" :
        "No history yet: a point is recorded whenever the figures move.";
    }
  }

  function render() {
    renderSummary(snapshot.summary, snapshot.as_of);
    renderBreakdown(snapshot.breakdown);
    renderPerps(snapshot.perps);
    renderMarginCall(snapshot.margin_call, snapshot.summary);
    renderPrices(snapshot.prices);
    renderLink(snapshot.link);
    renderHistory();
    listeners.forEach(function (listener) {
      listener(snapshot);
    });
    rendered = true;
  }

  // The charts are drawn at their rendered width: redraw when it changes.
  var chartWidth = 0;
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      var chart = document.getElementById("equity-chart") || document.getElementById("health-chart");
      var width = chart ? Math.round(chart.getBoundingClientRect().width) : 0;
      if (width && width !== chartWidth) {
        chartWidth = width;
        renderHistory();
      }
    }, 150);
  });

  // --- The snapshot ------------------------------------------------------------------

  var refreshing = null;
  var refreshAgain = false;
  var refreshTimer = null;
  var refreshDue = Infinity;
  var lastRefresh = 0;
  var lastNews = Date.now(); // the last snapshot or push

  function refreshSnapshot() {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = null;
    refreshDue = Infinity;
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    lastRefresh = Date.now();
    refreshing = page.getJSON(config.urls.snapshot).then(function (answer) {
      if (answer.status === 401) {
        setSocketState("unauthorized");
        throw new Error("signed out");
      }
      if (!answer.ok) throw new Error("snapshot " + answer.status);
      var fresh = answer.body;
      snapshot = fresh;
      lastNews = Date.now();
      render();
      return fresh;
    }).catch(function () {
      return null;
    }).finally(function () {
      refreshing = null;
      if (refreshAgain) {
        refreshAgain = false;
        refreshSnapshot();
      }
    });
    return refreshing;
  }

  // Re-read the snapshot within `delay` ms (an earlier due time wins).
  function scheduleRefresh(delay) {
    var due = Date.now() + delay;
    if (due >= refreshDue) return;
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshDue = due;
    refreshTimer = setTimeout(refreshSnapshot, delay);
  }

  // --- Pushes ------------------------------------------------------------------------

  function applyMargin(update) {
    if (Date.parse(update.as_of) < Date.parse(snapshot.as_of)) return; // older than what we show
    lastNews = Date.now();
    var prices = snapshot.prices || (snapshot.prices = {});
    if (prices.stale !== update.stale) scheduleRefresh(SOON_MS); // which markets
    prices.stale = update.stale;
    prices.stale_since = update.stale_since;
    renderPrices(prices);
    var cashChanged = update.cash !== snapshot.summary.cash;
    var summary = snapshot.summary;
    ["cash", "used_margin", "adjusted_equity", "available_margin", "available_credit", "health",
      "margin_utilization", "status", "as_of", "stale", "stale_since"]
      .forEach(function (key) {
        summary[key] = update[key];
      });
    summary.borrowing = positive(update.used_margin);
    snapshot.as_of = update.as_of;
    renderSummary(summary, update.as_of);
    var history = snapshot.history || (snapshot.history = []);
    var last = history[history.length - 1];
    if (!last || Date.parse(update.as_of) - Date.parse(last.ts) >= LIVE_POINT_EVERY_MS) {
      // Net deposits move only with cash (a deposit or withdrawal re-reads the
      // snapshot soon after): until then the last point's stand, and P&L follows.
      var first = history[0];
      var deposits = last ? last.net_deposits : null;
      history.push({
        ts: update.as_of, health: update.health, status: update.status,
        adjusted_equity: update.adjusted_equity, used_margin: update.used_margin,
        net_deposits: deposits,
        equity_change: isBlank(deposits) || !first ? null : fromMicro(
          micro(update.adjusted_equity) - micro(first.adjusted_equity) -
          (micro(deposits) - micro(first.net_deposits))),
      });
      if (history.length > HISTORY_MAX) history.splice(0, history.length - HISTORY_MAX);
      renderHistory();
    }
    // Cash moved (a fill, a deposit, a withdrawal): Deposit and positions changed too.
    scheduleRefresh(cashChanged ? SOON_MS : Math.max(SOON_MS, lastRefresh + TICK_REFRESH_MS - Date.now()));
  }

  function applyMarginCall(call) {
    snapshot.margin_call = call.status === "open" ? call : null;
    if (call.status === "open") {
      // The engine sends the call before the figures that opened it: show the red
      // gauge with the call's health now; the margin update and snapshot follow.
      var summary = snapshot.summary;
      summary.status = "margin_call";
      summary.borrowing = true;
      if (!isBlank(call.health)) summary.health = call.health;
      renderSummary(summary, snapshot.as_of);
    }
    renderMarginCall(call, snapshot.summary);
    scheduleRefresh(SOON_MS);
  }

  function applyOrder(order) {
    var note = document.getElementById("order-activity");
    if (!note) {
      note = page.el("p", { id: "order-activity", class: "muted small", role: "status" });
      var header = root.querySelector(".dash-header");
      header.parentNode.insertBefore(note, header.nextSibling);
    }
    note.setAttribute("data-order-id", order.id);
    note.setAttribute("data-order-status", order.status);
    note.textContent = "Order " + order.id + " (" + order.side + " " + order.symbol + "): " + order.status + ".";
    scheduleRefresh(SOON_MS);
  }

  function onMessage(message) {
    if (message.type === "margin") applyMargin(message);
    else if (message.type === "margin_call") applyMarginCall(message);
    else if (message.type === "order") applyOrder(message);
  }

  // --- The socket (PortalPage.liveSocket) -----------------------------------------

  var live = null;

  function setSocketState(state) {
    page.socketStatusShow(document.getElementById("live-status"), state);
    if (state === "unauthorized" && live) live.stop();
  }

  window.PrimeDashboard = {
    config: config,
    snapshot: function () {
      return snapshot;
    },
    refreshSnapshot: refreshSnapshot,
    onSnapshot: function (listener) {
      listeners.push(listener);
      listener(snapshot);
    },
  };

  // A stopped feed sends nothing: after the stale age without news, ask the server.
  setInterval(function () {
    var quiet = ((snapshot.prices && snapshot.prices.stale_after_seconds) || 15) * 1000;
    if (Date.now() - lastNews >= quiet) refreshSnapshot();
  }, STALE_CHECK_MS);

  render();
  live = page.liveSocket(config.ws_path, {
    onState: setSocketState,
    onOpen: refreshSnapshot,
    onMessage: onMessage,
  });
})();
