/* The dashboard's forms: order entry with a live projection, the close-position and
 * add-funds simulations, and per-market perp leverage with a preview.
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
  var format = app.format;

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

  // --- Order form ----------------------------------------------------------------------

  var form = document.getElementById("order-form");
  if (form) {
    var projection = document.getElementById("order-projection");
    var message = document.getElementById("order-message");
    var submit = document.getElementById("order-submit");
    var sequence = 0;

    var resetProjection = function () {
      projection.setAttribute("data-zone", "idle");
      ["projected_health", "buying_power", "estimate", "fees", "isolated_margin", "liquidation_price"]
        .forEach(function (name) {
          setField(name, null, "—", projection);
        });
      say(field("zone_message", projection), "");
      var summary = app.snapshot().summary;
      setField("health_before", summary.health, healthText(summary.health), projection);
    };

    var showProjection = function (result) {
      var p = result.projection;
      var perp = result.kind === "perpetual";
      projection.setAttribute("data-zone", p.zone);
      projection.setAttribute("data-valid", p.is_valid_trade ? "true" : "false");
      setField("health_before", p.before.health, healthText(p.before.health), projection);
      setField("projected_health", p.after.health, healthText(p.after.health), projection);
      setField("buying_power", result.buying_power,
        result.buying_power === null ? (perp ? "—" : "— (buys only)") : format.money(result.buying_power), projection);
      setField("estimate", result.quantity,
        format.number(result.quantity, 6) + " @ " + format.number(result.average_price, perp ? 2 : 4) + " on " + result.venue,
        projection);
      setField("fees", result.fees, format.money(result.fees), projection);
      projection.querySelectorAll("[data-perp-only]").forEach(function (node) {
        node.hidden = !perp;
      });
      if (perp) {
        setField("isolated_margin", result.isolated_margin,
          format.money(result.isolated_margin) + " at " + result.leverage + "x", projection);
        setField("liquidation_price", result.liquidation_price,
          result.liquidation_price === null ? "— (adds to your position)" : format.number(result.liquidation_price, 2),
          projection);
      }
      var text = "";
      if (p.zone === "danger") text = p.refusal || "Projected Margin Health is below the initial requirement: this order would be refused.";
      else if (p.zone === "warning") text = "Caution: projected Margin Health is below " +
        format.ratio(app.snapshot().thresholds.healthy) + ".";
      say(field("zone_message", projection), text, p.zone === "danger" ? "error" : p.zone === "warning" ? "warning" : "info");
    };

    var project = debounce(function () {
      var notional = form.elements.notional_usdc.value.trim().replace(/,/g, "");
      if (!notional || !(Number(notional) > 0)) {
        sequence += 1;
        resetProjection();
        return;
      }
      var side = form.querySelector('input[name="side"]:checked').value;
      var params = new URLSearchParams({ symbol: form.elements.symbol.value, side: side, notional: notional });
      var mine = ++sequence;
      projection.setAttribute("data-zone", "loading");
      getJSON(config.urls.projection + "?" + params.toString()).then(function (answer) {
        if (mine !== sequence) return; // a newer request is on its way
        if (answer.ok) return showProjection(answer.body);
        resetProjection();
        projection.setAttribute("data-zone", "error");
        say(field("zone_message", projection), answer.body.message || "No projection available.", "error");
      }).catch(function () {
        if (mine !== sequence) return;
        projection.setAttribute("data-zone", "error");
        say(field("zone_message", projection), "Could not reach the server for a projection.", "error");
      });
    }, DEBOUNCE_MS);

    form.addEventListener("input", project);
    form.addEventListener("change", project);
    app.onSnapshot(function (snapshot) {
      if (projection.getAttribute("data-zone") === "idle") {
        setField("health_before", snapshot.summary.health, healthText(snapshot.summary.health), projection);
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (form.elements.notional_usdc.value) {
        form.elements.notional_usdc.value = form.elements.notional_usdc.value.trim().replace(/,/g, "");
      }
      submit.disabled = true;
      say(message, "Placing the order…", "info");
      postForm(form).then(function (answer) {
        // A definite answer: the next order gets a new id (a lost answer keeps it,
        // so a retry cannot place the order twice).
        form.elements.client_order_id.value = newOrderId();
        if (answer.ok) {
          say(message, answer.body.message, "success");
          message.setAttribute("data-order-id", answer.body.order.id);
          message.setAttribute("data-order-status", answer.body.order.status);
          form.elements.notional_usdc.value = "";
          resetProjection();
          app.refreshSnapshot();
        } else {
          message.removeAttribute("data-order-id");
          say(message, answer.body.message || "The order was not placed.", "error");
          message.setAttribute("data-error-code", answer.body.code || "");
        }
      }).catch(function () {
        say(message, "No answer from the server: the order may or may not have been placed. " +
          "Submitting again is safe (it cannot be placed twice).", "error");
      }).finally(function () {
        submit.disabled = false;
      });
    });
    resetProjection();
  }

  // --- Close-position simulation --------------------------------------------------------

  var breakdown = document.getElementById("breakdown-rows");
  var closeBox = document.getElementById("close-simulation");
  if (breakdown && closeBox) {
    breakdown.addEventListener("click", function (event) {
      var button = event.target.closest('[data-action="simulate-close"]');
      if (!button) return;
      var row = button.closest("tr");
      var id = row.getAttribute("data-position-id");
      closeBox.hidden = false;
      closeBox.setAttribute("data-position-id", id);
      closeBox.setAttribute("data-state", "loading");
      closeBox.textContent = "Simulating…";
      getJSON(config.urls.close.replace("{id}", id)).then(function (answer) {
        if (!answer.ok) {
          closeBox.setAttribute("data-state", "error");
          closeBox.textContent = answer.body.message || "No simulation available.";
          return;
        }
        var r = answer.body;
        var p = r.projection;
        closeBox.setAttribute("data-state", "ready");
        closeBox.replaceChildren();
        var strong = function (name, value) {
          var node = document.createElement("strong");
          node.setAttribute("data-field", name);
          node.setAttribute("data-value", value === null ? "" : value);
          node.textContent = healthText(value);
          return node;
        };
        var line = document.createElement("p");
        line.append(
          "Closing " + format.number(r.quantity, 6) + " " + r.symbol + " at about " +
            format.number(r.average_price, 4) + " on " + r.venue + " raises " +
            format.money(r.proceeds) + ". Margin Health: ",
          strong("close_health_before", p.before.health),
          " → ",
          strong("close_health_after", p.after.health),
          "."
        );
        closeBox.appendChild(line);
      }).catch(function () {
        closeBox.setAttribute("data-state", "error");
        closeBox.textContent = "Could not reach the server.";
      });
    });
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
