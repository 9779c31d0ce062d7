/* The margin dashboard, live: applies pushes from ws/dashboard/<account>/ in place.
 *
 * - On every (re)connect it re-reads the JSON snapshot, so nothing pushed while
 *   the socket was down is missed (pushes are hints; the snapshot is the truth).
 * - "margin" pushes update the gauge and the summary at once; the breakdown,
 *   perps and Deposit are re-read from the snapshot: soon after a change of
 *   cash (a fill, a deposit) or an order / margin-call push, and at most every
 *   TICK_REFRESH_MS while only prices move.
 * - Reconnects with exponential backoff and jitter; 4401 / 4403 stop it.
 * - "Prices delayed since …": the banner follows the snapshot's and the pushes'
 *   `stale` flag; with no news for the policy's stale age (a stopped feed sends
 *   no pushes), the snapshot is re-read every STALE_CHECK_MS to learn it.
 * - #live-status[data-socket] tells tests and people the socket's state:
 *   connecting | open | reconnecting | unauthorized | forbidden.
 *
 * Numbers are written as accounts/templatetags/portal_format.py writes them
 * (exact decimal strings, rounded half up), and every figure keeps its raw
 * value in data-value.
 */
(function () {
  "use strict";

  var TICK_REFRESH_MS = 10000;
  var STALE_CHECK_MS = 5000;
  var SOON_MS = 250;
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 30000;
  var HISTORY_MAX = 500;
  var LIVE_POINT_EVERY_MS = 5000;
  var GAUGE_MAX = 3;
  var CHART_MAX = 10;

  var configNode = document.getElementById("dashboard-config");
  var root = document.getElementById("dashboard");
  if (!configNode || !root) return;
  var config = JSON.parse(configNode.textContent);
  var snapshot = JSON.parse(document.getElementById("dashboard-snapshot").textContent);
  var listeners = [];

  // --- Formatting: the one layer, static/js/format.js ----------------------------

  var format = window.PortalFormat;
  var isBlank = format.isBlank;

  function positive(value) {
    return !isBlank(value) && Number(value) > 0;
  }

  function statusLabel(status, borrowing) {
    if (!borrowing) return "No borrowing";
    return { healthy: "Healthy", caution: "Caution", margin_call: "Margin call" }[status] || status;
  }

  // --- DOM helpers -----------------------------------------------------------------

  function field(name, scope) {
    return (scope || root).querySelector('[data-field="' + name + '"]');
  }

  function setField(name, value, text, scope) {
    var node = field(name, scope);
    if (!node) return;
    node.setAttribute("data-value", isBlank(value) ? "" : String(value));
    node.textContent = text;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(child);
    });
    return node;
  }

  function cell(name, value, text, numeric) {
    return el("td", {
      class: numeric ? "num" : "",
      "data-field": name,
      "data-value": isBlank(value) ? "" : String(value),
      text: text,
    });
  }

  // --- Gauge -----------------------------------------------------------------------

  var SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) {
      node.setAttribute(key, attrs[key]);
    });
    return node;
  }

  function gaugePoint(health, radius) {
    var angle = Math.PI * (1 - Math.min(Math.max(health, 0), GAUGE_MAX) / GAUGE_MAX);
    return [100 + radius * Math.cos(angle), 100 - radius * Math.sin(angle)];
  }

  function arc(from, to, radius) {
    var a = gaugePoint(from, radius);
    var b = gaugePoint(to, radius);
    return "M" + a[0].toFixed(2) + " " + a[1].toFixed(2) + " A" + radius + " " + radius +
      " 0 0 1 " + b[0].toFixed(2) + " " + b[1].toFixed(2);
  }

  function drawGauge(summary, thresholds) {
    var gauge = document.getElementById("health-gauge");
    if (!gauge) return;
    while (gauge.firstChild) gauge.removeChild(gauge.firstChild);
    var maintenance = Number(thresholds.maintenance);
    var healthy = Number(thresholds.healthy);
    [
      [0, maintenance, "zone-red"],
      [maintenance, healthy, "zone-yellow"],
      [healthy, GAUGE_MAX, "zone-green"],
    ].forEach(function (zone) {
      gauge.appendChild(svg("path", { d: arc(zone[0], zone[1], 80), class: "gauge-zone " + zone[2] }));
    });
    var borrowing = summary.borrowing;
    var value = borrowing && !isBlank(summary.health) ? Number(summary.health) : GAUGE_MAX;
    var tip = gaugePoint(value, 70);
    gauge.appendChild(svg("line", {
      x1: 100, y1: 100, x2: tip[0].toFixed(2), y2: tip[1].toFixed(2), class: "gauge-needle",
      "data-health": borrowing ? String(summary.health) : "unbounded",
    }));
    gauge.appendChild(svg("circle", { cx: 100, cy: 100, r: 5, class: "gauge-hub" }));
  }

  // --- Health-history chart ----------------------------------------------------------

  function drawChart(history, thresholds) {
    var chart = document.getElementById("health-chart");
    if (!chart) return;
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    chart.setAttribute("data-points", String(history.length));
    var W = 640, H = 200, left = 34, right = 8, top = 8, bottom = 22;
    // The scale: 0 to 3, or up to the highest health shown (at most CHART_MAX); no
    // borrowing (unbounded) and anything higher sit on the top line.
    var highest = history.reduce(function (max, point) {
      return isBlank(point.health) ? max : Math.max(max, Number(point.health));
    }, 0);
    var top_value = Math.min(CHART_MAX, Math.max(GAUGE_MAX, Math.ceil(highest)));
    var y = function (health) {
      var value = isBlank(health) ? top_value : Math.min(Number(health), top_value);
      return top + (H - top - bottom) * (1 - Math.max(value, 0) / top_value);
    };
    [[thresholds.maintenance, "line-red"], [thresholds.initial, "line-orange"],
     [thresholds.healthy, "line-green"]].forEach(function (line) {
      var ly = y(line[0]).toFixed(1);
      chart.appendChild(svg("line", { x1: left, x2: W - right, y1: ly, y2: ly, class: "threshold " + line[1] }));
      var label = svg("text", { x: left - 4, y: Number(ly) + 4, class: "axis", "text-anchor": "end" });
      label.textContent = format.fixed(line[0], 1);
      chart.appendChild(label);
    });
    var cap = svg("text", { x: left - 4, y: y(top_value) + 4, class: "axis", "text-anchor": "end" });
    cap.textContent = top_value + (highest > top_value ? "+" : "");
    chart.appendChild(cap);
    if (!history.length) return;
    var times = history.map(function (point) { return Date.parse(point.ts); });
    var t0 = times[0], t1 = times[times.length - 1];
    var x = function (t) {
      return t1 === t0 ? (left + W - right) / 2 : left + (W - left - right) * (t - t0) / (t1 - t0);
    };
    var path = history.map(function (point, i) {
      return (i ? "L" : "M") + x(times[i]).toFixed(1) + " " + y(point.health).toFixed(1);
    }).join(" ");
    chart.appendChild(svg("path", { d: path, class: "health-line" }));
    var last = history[history.length - 1];
    chart.appendChild(svg("circle", {
      cx: x(t1).toFixed(1), cy: y(last.health).toFixed(1), r: 3, class: "health-dot status-" + last.status,
    }));
    [[t0, left, "start"], [t1, W - right, "end"]].forEach(function (tick) {
      var label = svg("text", { x: tick[1], y: H - 6, class: "axis", "text-anchor": tick[2] });
      label.textContent = format.when(tick[0]);
      chart.appendChild(label);
    });
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
    var card = document.getElementById("margin-health");
    card.setAttribute("data-status", summary.status);
    card.setAttribute("data-borrowing", summary.borrowing ? "true" : "false");
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
  // panel it opens is static/js/trading-forms.js's.
  function closeCell(row) {
    if (root.getAttribute("data-account-kind") !== "custodial") return el("td");
    return el("td", {}, [
      el("button", {
        type: "button",
        class: "button button--small button--secondary",
        "data-action": "close-position",
        "aria-expanded": "false",
      }, [
        document.createTextNode("Close"),
        el("span", { class: "visually-hidden", text: " " + row.symbol }),
        document.createTextNode("…"),
      ]),
    ]);
  }

  function renderBreakdown(rows) {
    var body = document.getElementById("breakdown-rows");
    if (!body) return;
    var fresh = rows.map(function (row) {
      var head = el("th", { scope: "row", "data-field": "symbol" }, [
        el("span", { class: "symbol", text: row.symbol }),
        document.createTextNode(" "),
        el("span", { class: "muted small", text: row.title }),
      ]);
      return el("tr", { "data-position-id": String(row.position_id), "data-symbol": row.symbol }, [
        head,
        cell("quantity", row.quantity, format.number(row.quantity, 6), true),
        cell("collateral_price", row.collateral_price, format.number(row.collateral_price, 4, false), true),
        cell("value", row.value, format.money(row.value), true),
        cell("haircut", row.haircut, format.percent(row.haircut), true),
        cell("contribution", row.contribution, format.money(row.contribution), true),
        cell("pnl", row.pnl, format.money(row.pnl), true),
        closeCell(row),
      ]);
    });
    if (!fresh.length) {
      fresh = [el("tr", { class: "empty" }, [el("td", { colspan: "8", text: "No prediction-market positions." })])];
    }
    body.replaceChildren.apply(body, fresh);
  }

  function renderPerps(rows) {
    var body = document.getElementById("perp-rows");
    if (!body) return;
    var fresh = rows.map(function (row) {
      return el("tr", { "data-position-id": String(row.position_id), "data-symbol": row.symbol }, [
        el("th", { scope: "row", "data-field": "symbol", text: row.symbol }),
        cell("side", row.side, row.side.charAt(0).toUpperCase() + row.side.slice(1), false),
        cell("quantity", row.quantity, format.number(row.quantity, 6), true),
        cell("average_price", row.average_price, format.number(row.average_price, 2), true),
        cell("mark_price", row.mark_price, format.number(row.mark_price, 2), true),
        cell("leverage", row.leverage, row.leverage + "x", true),
        cell("isolated_margin", row.isolated_margin, format.money(row.isolated_margin), true),
        cell("pnl", row.pnl, format.money(row.pnl), true),
        cell("liquidation_price", row.liquidation_price, format.number(row.liquidation_price, 2), true),
        closeCell(row),
      ]);
    });
    if (!fresh.length) {
      fresh = [el("tr", { class: "empty" }, [el("td", { colspan: "10", text: "No perpetual positions." })])];
    }
    body.replaceChildren.apply(body, fresh);
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
      var time = el("time", { datetime: prices.stale_since }, [
        document.createTextNode(format.when(prices.stale_since)),
      ]);
      since.appendChild(document.createTextNode(" since "));
      since.appendChild(time);
    }
    if (prices.symbols) field("stale_symbols", banner).textContent = prices.symbols.join(", ");
  }

  function renderHistory() {
    drawChart(snapshot.history || [], snapshot.thresholds);
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
    renderHistory();
    listeners.forEach(function (listener) {
      listener(snapshot);
    });
  }

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
    refreshing = fetch(config.urls.snapshot, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (response.status === 401) {
        setSocketState("unauthorized");
        throw new Error("signed out");
      }
      if (!response.ok) throw new Error("snapshot " + response.status);
      return response.json();
    }).then(function (fresh) {
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
      history.push({
        ts: update.as_of, health: update.health, status: update.status,
        adjusted_equity: update.adjusted_equity, used_margin: update.used_margin,
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
      note = el("p", { id: "order-activity", class: "muted small", role: "status" });
      var header = root.querySelector(".dash-header");
      header.parentNode.insertBefore(note, header.nextSibling);
    }
    note.setAttribute("data-order-id", order.id);
    note.setAttribute("data-order-status", order.status);
    note.textContent = "Order " + order.id + " (" + order.side + " " + order.symbol + "): " + order.status + ".";
    scheduleRefresh(SOON_MS);
  }

  function onMessage(event) {
    var message;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      return;
    }
    if (message.type === "margin") applyMargin(message);
    else if (message.type === "margin_call") applyMarginCall(message);
    else if (message.type === "order") applyOrder(message);
  }

  // --- The socket --------------------------------------------------------------------

  var socket = null;
  var attempt = 0;
  var reconnectTimer = null;
  var stopped = false;
  var STATE_LABELS = {
    connecting: "Connecting…",
    open: "Live",
    reconnecting: "Reconnecting…",
    unauthorized: "Signed out: reload to sign in",
    forbidden: "Not your account",
  };

  function setSocketState(state) {
    var status = document.getElementById("live-status");
    status.setAttribute("data-socket", state);
    setField("socket_label", state, STATE_LABELS[state] || state, status);
    if (state === "unauthorized" || state === "forbidden") stopped = true;
  }

  function connect() {
    if (stopped) return;
    reconnectTimer = null;
    setSocketState(attempt ? "reconnecting" : "connecting");
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + config.ws_path);
    socket.onopen = function () {
      attempt = 0;
      setSocketState("open");
      refreshSnapshot();
    };
    socket.onmessage = onMessage;
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4401) return setSocketState("unauthorized");
      if (event.code === 4403) return setSocketState("forbidden");
      setSocketState("reconnecting");
      var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
      attempt += 1;
      reconnectTimer = setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
    };
  }

  function reconnectNow() {
    if (socket || stopped) return;
    if (reconnectTimer) clearTimeout(reconnectTimer);
    connect();
  }

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });

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
  connect();
})();
