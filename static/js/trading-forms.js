/* The dashboard's forms (the order ticket is static/js/order-ticket.js): a position row's
 * Close… panel (close all or reduce, simulated, then confirmed), the add-funds
 * simulation, and per-market perp leverage with a preview.
 *
 * Every figure comes from the server (the simulation services); this file only
 * asks, debounced, and shows the answers. Writes are form POSTs with the CSRF
 * token; the answers are JSON ({"code", "message"} on refusal).
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;
  var app = window.PrimeDashboard;
  if (!app) return;
  var config = app.config;
  var format = window.PortalFormat;

  function q(selector, scope) {
    return (scope || document).querySelector(selector);
  }

  function field(name, scope) {
    return q('[data-field="' + name + '"]', scope);
  }

  function setField(name, value, text, scope) {
    var node = field(name, scope);
    if (!node) return;
    node.setAttribute("data-value", value === null || value === undefined ? "" : String(value));
    node.textContent = text;
  }

  function debounce(fn, wait) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () {
        fn.apply(null, args);
      }, wait);
    };
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        }, function () {
          return { ok: false, status: response.status, body: { message: "Unexpected answer (" + response.status + ")." } };
        });
      });
  }

  function postForm(form) {
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: new FormData(form),
    }).then(function (response) {
      return response.json().then(function (body) {
        return { ok: response.ok, status: response.status, body: body };
      }, function () {
        return { ok: false, status: response.status, body: { message: "Unexpected answer (" + response.status + ")." } };
      });
    });
  }

  function say(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.setAttribute("data-kind", kind || "info");
  }

  function healthText(value) {
    return format.ratio(value, "No borrowing");
  }

  function newOrderId() {
    if (window.crypto && crypto.randomUUID) return "web-" + crypto.randomUUID().replace(/-/g, "");
    return "web-" + Date.now().toString(16) + Math.random().toString(16).slice(2);
  }

  // The order ticket (order entry, its projection, depth and confirmation) is in
  // static/js/order-ticket.js.

  // --- Close / Reduce a position ----------------------------------------------------------
  //
  // The rows' Close… panel is static/js/close-panel.js (shared with the positions page):
  // after a close the dashboard re-reads its snapshot, and the panel follows its row
  // when the rows are re-drawn.

  if (window.PortalClosePanel) {
    var closer = window.PortalClosePanel.attach({
      template: document.getElementById("close-panel-template"),
      bodies: [document.getElementById("breakdown-rows"), document.getElementById("perp-rows")],
      simulationUrl: config.urls.close,
      refresh: app.refreshSnapshot,
    });
    if (closer) app.onSnapshot(closer.redrawn);
  }

  // --- Add-funds simulation ----------------------------------------------------------------

  var addFunds = document.getElementById("add-funds");
  if (addFunds) {
    var addFundsMessage = field("add_funds_message", addFunds);
    var lastAsked = null;
    var simulateAddFunds = function () {
      addFunds.setAttribute("data-state", "loading");
      getJSON(config.urls.add_funds).then(function (answer) {
        if (!answer.ok) {
          addFunds.setAttribute("data-state", "error");
          say(addFundsMessage, answer.body.message || "No simulation available.", "error");
          return;
        }
        var byName = {};
        answer.body.targets.forEach(function (target) {
          byName[target.name] = target;
        });
        setField("add_funds_healthy", byName.healthy.amount, format.money(byName.healthy.amount), addFunds);
        setField("add_funds_initial", byName.initial.amount, format.money(byName.initial.amount), addFunds);
        addFunds.setAttribute("data-state", "ready");
        var borrowing = Number(answer.body.before.used_margin) > 0;
        var text = "No borrowing: nothing to add.";
        if (borrowing && Number(byName.healthy.amount) > 0) {
          text = "A deposit of " + format.money(byName.healthy.amount) + " brings Margin Health to " +
            format.ratio(byName.healthy.target) + " (now " + format.ratio(answer.body.before.health) + ").";
        } else if (borrowing) {
          text = "Margin Health is already at or above " + format.ratio(byName.healthy.target) + ": nothing to add.";
        }
        say(addFundsMessage, text, "info");
      }).catch(function () {
        addFunds.setAttribute("data-state", "error");
        say(addFundsMessage, "Could not reach the server.", "error");
      });
    };
    q("#add-funds-simulate", addFunds).addEventListener("click", simulateAddFunds);
    // While borrowing below the healthy line, keep the amounts current by themselves.
    app.onSnapshot(function (snapshot) {
      var summary = snapshot.summary;
      var key = summary.used_margin + "/" + summary.adjusted_equity;
      if (summary.borrowing && summary.status !== "healthy" && key !== lastAsked) {
        lastAsked = key;
        simulateAddFunds();
      }
    });
  }

  // --- Perp leverage ------------------------------------------------------------------------

  document.querySelectorAll("form.leverage-market").forEach(function (market) {
    var symbol = market.getAttribute("data-symbol");
    var slider = market.elements.leverage;
    var output = field("leverage_choice", market);
    var preview = q("dl.preview", market);
    var note = field("leverage_message", market);
    var mine = 0;

    var showPreview = function (r) {
      market.setAttribute("data-verdict", r.status);
      if (r.has_position) {
        preview.hidden = false;
        setField("margin_preview", r.new_isolated_margin,
          format.money(r.isolated_margin) + " → " + format.money(r.new_isolated_margin), market);
        setField("margin_change", r.margin_change, format.money(r.margin_change), market);
        setField("liquidation_preview", r.new_liquidation_price,
          format.number(r.liquidation_price, 2) + " → " + format.number(r.new_liquidation_price, 2), market);
      } else {
        preview.hidden = true;
      }
      say(note, (r.status === "REJECTED" ? "Would be rejected: " : "") + r.message,
        r.status === "REJECTED" ? "error" : "info");
    };

    var ask = debounce(function () {
      var leverage = slider.value;
      if (leverage === slider.getAttribute("data-current")) {
        preview.hidden = true;
        market.removeAttribute("data-verdict");
        say(note, "");
        return;
      }
      var id = ++mine;
      var url = config.urls.leverage_preview.replace("{symbol}", encodeURIComponent(symbol)) +
        "?leverage=" + encodeURIComponent(leverage);
      getJSON(url).then(function (answer) {
        if (id !== mine) return;
        if (answer.ok) showPreview(answer.body);
        else say(note, answer.body.message || "No preview available.", "error");
      });
    }, DEBOUNCE_MS);

    slider.addEventListener("input", function () {
      output.textContent = slider.value + "x";
      ask();
    });

    market.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = q('[data-action="apply-leverage"]', market);
      button.disabled = true;
      postForm(market).then(function (answer) {
        var r = answer.body;
        market.setAttribute("data-result", r.status || "error");
        if (r.status === "APPLIED") {
          slider.setAttribute("data-current", String(r.newLeverage));
          setField("leverage_current", r.newLeverage, r.newLeverage + "x", market);
          preview.hidden = true;
          say(note, r.message, "success");
          app.refreshSnapshot();
        } else if (r.status === "REJECTED") {
          slider.value = slider.getAttribute("data-current");
          output.textContent = slider.value + "x";
          say(note, "Rejected (" + r.rejectReason + "): " + r.message + " " + (r.explanation || ""), "error");
        } else {
          say(note, r.message || "Leverage was not changed.", "error");
        }
      }).catch(function () {
        say(note, "Could not reach the server.", "error");
      }).finally(function () {
        button.disabled = false;
      });
    });
  });
})();
