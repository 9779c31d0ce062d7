/* The dashboard's forms: order entry with a live projection, a position row's
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

  // --- Order form ----------------------------------------------------------------------

  var form = document.getElementById("order-form");
  if (form) {
    var projection = document.getElementById("order-projection");
    var message = document.getElementById("order-message");
    var submit = document.getElementById("order-submit");
    var sequence = 0;

    var resetProjection = function () {
      projection.setAttribute("data-zone", "idle");
      ["projected_health", "buying_power", "buying_power_fillable", "estimate", "fees", "isolated_margin",
        "liquidation_price"]
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
      // Buying power: the largest notional keeping health ≥ the initial requirement,
      // and beside it what the books can fill now (— when there is none: sells, perps).
      setField("buying_power", result.buying_power, format.money(result.buying_power), projection);
      setField("buying_power_fillable", result.buying_power_fillable,
        format.money(result.buying_power_fillable), projection);
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

  // --- Close / Reduce a position ----------------------------------------------------------
  //
  // "Close…" on a row (binary or perp) opens one inline panel under it: Close all,
  // Reduce by % or Reduce by quantity; for a binary position the simulation of that
  // size (health before → after, what the books can absorb now); Confirm posts the
  // close (position_close) with the panel's client_order_id: a fresh one each time
  // the panel opens and after each definite answer, the same one when a lost answer
  // is retried, so a retry cannot close twice. The panel stays under its row while
  // the rows are re-drawn with the same position, and closes when the position
  // changes (or is gone) or another row's panel opens.

  var QUANTITY_PLACES = 6;
  var panelTemplate = document.getElementById("close-panel-template");
  var panel = null;

  // A non-negative decimal string as an integer count of 10^-places (BigInt); null
  // when it is not one or has more places.
  function scaledInteger(text, places) {
    var match = /^(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
    if (!match || (match[1] + (match[2] || "")) === "") return null;
    var fraction = match[2] || "";
    if (fraction.replace(/0+$/, "").length > places) return null;
    while (fraction.length < places) fraction += "0";
    return BigInt((match[1] || "0") + fraction.slice(0, places));
  }

  function unscaled(value, places) {
    var digits = value.toString();
    while (digits.length <= places) digits = "0" + digits;
    return digits.slice(0, digits.length - places) + "." + digits.slice(digits.length - places);
  }

  // `percent` of `held` rounded down to the quantity step (at least one step), as
  // position_close sizes it.
  function percentOf(held, percent) {
    var match = /^(\d*)(?:\.(\d*))?$/.exec(percent);
    var places = (match[2] || "").length;
    var share = BigInt((match[1] || "0") + (match[2] || ""));
    var size = scaledInteger(held, QUANTITY_PLACES) * share / (BigInt(100) * BigInt(Math.pow(10, places)));
    if (size < BigInt(1)) size = BigInt(1);
    return unscaled(size, QUANTITY_PLACES);
  }

  // The size chosen in the panel: {quantity (null: all), post: the fields to send}
  // or {error}.
  function closeSize(p) {
    var mode = p.form.elements.close_mode.value;
    if (mode === "all") return { quantity: null, post: {} };
    var text = p.form.elements[mode].value.trim().replace(/,/g, "");
    var heldUnits = scaledInteger(p.held, QUANTITY_PLACES);
    if (mode === "percent") {
      if (!text) return { error: "Enter the percentage of the position to close." };
      var share = scaledInteger(text, 6);
      if (share === null || share <= BigInt(0) || share > BigInt(100000000)) {
        return { error: "The percentage is a number above 0 and at most 100." };
      }
      return { quantity: percentOf(p.held, text), post: { percent: text } };
    }
    if (!text) return { error: "Enter the quantity to close." };
    var units = scaledInteger(text, QUANTITY_PLACES);
    if (units === null || units <= BigInt(0)) {
      return { error: "The quantity is a number above 0 with at most " + QUANTITY_PLACES + " decimals." };
    }
    if (units > heldUnits) {
      return { error: "That is more than the position's " + format.number(p.held, 6) + "." };
    }
    return { quantity: text, post: { quantity: text } };
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function closeResultText(body) {
    var order = body.order;
    var filled = Number(order.filled_quantity) > 0;
    if (order.status === "cancelled" && filled) {
      return (order.side === "sell" ? "Sold " : "Bought ") + format.number(order.filled_quantity, 6) +
        " of " + format.number(order.quantity, 6) + " " + order.symbol + " at " +
        format.number(order.average_price, 4) + " on " + order.venue + "; the rest found no price " +
        "within the slippage limit and was cancelled.";
    }
    return body.message;
  }

  function panelSimulate(p) {
    var summary = field("close_summary", p.form);
    var fillable = field("close_fillable", p.form);
    var box = q(".close-simulation", p.form);
    var size = closeSize(p);
    var mine = ++p.sequence;
    if (size.error) {
      box.setAttribute("data-zone", "error");
      setText(summary, size.error);
      setText(fillable, "");
      setField("close_health_before", null, "—", p.form);
      setField("close_health_after", null, "—", p.form);
      return;
    }
    var quantity = size.quantity === null ? p.held : size.quantity;
    if (!p.binary) {
      box.setAttribute("data-zone", "ok");
      setText(summary, "Closing " + format.number(quantity, 6) + " of " + format.number(p.held, 6) + " " +
        p.symbol + " (" + p.side + ") with an immediate-or-cancel order at the best " +
        (p.side === "short" ? "ask plus" : "bid less") + " 50 bps: its isolated margin and P&L return to cash.");
      return;
    }
    box.setAttribute("data-zone", "loading");
    var url = config.urls.close.replace("{id}", p.positionId) +
      (size.quantity === null ? "" : "?" + new URLSearchParams({ quantity: size.quantity }).toString());
    getJSON(url).then(function (answer) {
      if (mine !== p.sequence) return; // a newer size is being simulated
      if (!answer.ok) {
        box.setAttribute("data-zone", "error");
        setText(summary, answer.body.message || "No simulation available.");
        setText(fillable, "");
        return;
      }
      var r = answer.body;
      var projection = r.projection;
      var f = r.fillable;
      box.setAttribute("data-zone", projection.zone);
      box.setAttribute("data-quantity", r.quantity);
      setText(summary, "Closing " + format.number(r.quantity, 6) + " of " + format.number(r.held, 6) + " " + r.symbol + ".");
      setField("close_health_before", projection.before.health, healthText(projection.before.health), p.form);
      setField("close_health_after", projection.after.health, healthText(projection.after.health), p.form);
      var where = f ? " at ~" + format.number(f.average_price, 4) + " on " + f.venue +
        " (slippage " + format.number(f.slippage_bps, 2) + " bps)" : "";
      fillable.setAttribute("data-value", f ? f.quantity : "0");
      fillable.setAttribute("data-complete", f && f.complete ? "true" : "false");
      if (f && f.complete) {
        setText(fillable, "Fillable now: " + format.number(f.quantity, 6) + where + ", about " + format.money(f.proceeds) + ".");
      } else {
        setText(fillable, "The books cannot absorb it now: " + format.number(f ? f.quantity : "0", 6) + " of " +
          format.number(r.quantity, 6) + where + ". The close sells what they hold within 50 bps of the best " +
          "bid and cancels the rest.");
      }
    }).catch(function () {
      if (mine !== p.sequence) return;
      box.setAttribute("data-zone", "error");
      setText(summary, "Could not reach the server for a simulation.");
    });
  }

  function panelClose(restoreFocus) {
    var p = panel;
    if (!p) return;
    panel = null;
    p.sequence += 1;
    if (p.tr.parentNode) p.tr.parentNode.removeChild(p.tr);
    var button = q('[data-action="close-position"]', p.row);
    if (button) {
      button.setAttribute("aria-expanded", "false");
      button.removeAttribute("aria-controls");
      if (restoreFocus) button.focus();
    }
  }

  function panelOpen(row) {
    var again = panel && panel.row === row;
    panelClose(false);
    if (again) return; // the same button again: it toggles
    var body = row.parentNode;
    var quantityCell = q('[data-field="quantity"]', row);
    var sideCell = q('[data-field="side"]', row);
    var form = panelTemplate.content.firstElementChild.cloneNode(true);
    var tr = document.createElement("tr");
    var td = document.createElement("td");
    tr.className = "close-panel-row";
    td.colSpan = row.children.length;
    td.appendChild(form);
    tr.appendChild(td);
    var p = {
      row: row,
      tr: tr,
      form: form,
      body: body,
      binary: body.id === "breakdown-rows",
      positionId: row.getAttribute("data-position-id"),
      symbol: row.getAttribute("data-symbol"),
      held: quantityCell.getAttribute("data-value").replace(/^-/, ""),
      side: sideCell ? sideCell.getAttribute("data-value") : "long",
      orderId: newOrderId(),
      sequence: 0,
      done: false,
      result: q('[data-field="close_result"]', body.closest("section")),
    };
    form.id = "close-panel-" + p.positionId;
    form.setAttribute("data-position-id", p.positionId);
    form.setAttribute("data-symbol", p.symbol);
    setField("close_symbol", p.symbol, p.symbol, form);
    setField("close_held", p.held, format.number(p.held, 6), form);
    form.querySelectorAll("[data-binary-only]").forEach(function (node) {
      node.hidden = !p.binary;
    });
    var message = field("close_message", form);
    var confirm = q('[data-action="confirm-close"]', form);
    var button = q('[data-action="close-position"]', row);
    button.setAttribute("aria-expanded", "true");
    button.setAttribute("aria-controls", form.id);
    row.parentNode.insertBefore(tr, row.nextSibling);
    panel = p;

    var simulate = debounce(function () {
      if (panel === p) panelSimulate(p);
    }, DEBOUNCE_MS);
    p.resimulate = function () {
      if (!p.done) panelSimulate(p);
    };
    var showMode = function () {
      var mode = form.elements.close_mode.value;
      form.querySelectorAll("[data-close-mode]").forEach(function (node) {
        node.hidden = node.getAttribute("data-close-mode") !== mode;
      });
      form.setAttribute("data-mode", mode);
    };
    form.addEventListener("change", function (event) {
      if (event.target.name === "close_mode") {
        showMode();
        panelSimulate(p);
      }
    });
    form.addEventListener("input", function (event) {
      if (event.target.name === "percent" || event.target.name === "quantity") simulate();
    });
    form.addEventListener("click", function (event) {
      var preset = event.target.closest("[data-percent]");
      if (preset) {
        form.elements.percent.value = preset.getAttribute("data-percent");
        panelSimulate(p);
      } else if (event.target.closest('[data-action="cancel-close"]')) {
        panelClose(true);
      }
    });
    // Where focus was in the panel: re-drawing the rows detaches it for a moment.
    form.addEventListener("focusin", function (event) {
      p.lastFocus = event.target;
    });
    form.addEventListener("focusout", function (event) {
      if (event.relatedTarget && !form.contains(event.relatedTarget)) p.lastFocus = null;
    });
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") {
        event.preventDefault();
        if (panel === p) panelClose(true);
      }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (p.done) return;
      var size = closeSize(p);
      if (size.error) {
        say(message, size.error, "error");
        return;
      }
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.append("symbol", p.symbol);
      data.append("client_order_id", p.orderId);
      Object.keys(size.post).forEach(function (name) {
        data.append(name, size.post[name]);
      });
      confirm.disabled = true;
      form.setAttribute("data-state", "posting");
      say(message, "Closing…", "info");
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        body: data,
      }).then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        }, function () {
          return { ok: false, status: response.status, body: { message: "Unexpected answer (" + response.status + ")." } };
        });
      }).then(function (answer) {
        // A definite answer: the next confirm is a new close (a lost answer keeps the
        // id, so confirming again cannot close twice).
        p.orderId = newOrderId();
        if (answer.ok) {
          var text = closeResultText(answer.body);
          var order = answer.body.order;
          p.done = Number(order.filled_quantity) > 0 || order.status === "pending";
          form.setAttribute("data-state", p.done ? "done" : "idle");
          form.setAttribute("data-order-id", order.id);
          form.setAttribute("data-order-status", order.status);
          say(message, text, p.done ? "success" : "error");
          if (p.result) {
            say(p.result, text, p.done ? "success" : "error");
            p.result.setAttribute("data-order-id", order.id);
          }
          app.refreshSnapshot();
        } else {
          form.setAttribute("data-state", "error");
          form.setAttribute("data-error-code", answer.body.code || "");
          say(message, answer.body.message || "The position was not closed.", "error");
        }
      }).catch(function () {
        form.setAttribute("data-state", "error");
        say(message, "No answer from the server: the position may or may not have been closed. " +
          "Confirming again is safe (it cannot close twice).", "error");
      }).finally(function () {
        confirm.disabled = p.done;
      });
    });

    showMode();
    panelSimulate(p);
    form.elements.close_mode[0].focus();
  }

  if (panelTemplate) {
    ["breakdown-rows", "perp-rows"].forEach(function (id) {
      var body = document.getElementById(id);
      if (!body) return;
      body.addEventListener("click", function (event) {
        var button = event.target.closest('[data-action="close-position"]');
        if (button) panelOpen(button.closest("tr"));
      });
    });
    // The rows were re-drawn (a snapshot): keep the panel under the same position, or
    // close it when the position changed or is gone.
    app.onSnapshot(function () {
      var p = panel;
      if (!p) return;
      var row = p.body.querySelector('tr[data-position-id="' + p.positionId + '"]');
      var cell = row && q('[data-field="quantity"]', row);
      var button = row && q('[data-action="close-position"]', row);
      var lostFocus = p.lastFocus && (!document.activeElement || document.activeElement === document.body);
      if (!cell || !button || cell.getAttribute("data-value").replace(/^-/, "") !== p.held) {
        panelClose(false);
        if (lostFocus && button) button.focus();
        return;
      }
      row.parentNode.insertBefore(p.tr, row.nextSibling);
      p.row = row;
      button.setAttribute("aria-expanded", "true");
      button.setAttribute("aria-controls", p.form.id);
      if (lostFocus) p.lastFocus.focus();
      p.resimulate(); // prices moved
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
