/* A position row's Close… panel, on the dashboard and on the positions page
 * (window.PortalClosePanel).
 *
 * "Close…" on a row (binary or perp) opens one inline panel under it: Close all,
 * Reduce by % or Reduce by quantity; for a binary position the simulation of that
 * size (health before → after, what the books can absorb now, from
 * position-close-simulation); Confirm posts the close (position-close) with the
 * panel's client_order_id: a fresh one each time the panel opens and after each
 * definite answer, the same one when a lost answer is retried, so a retry cannot
 * close twice. The panel stays under its row while the rows are re-drawn with the
 * same position, and closes when the position changes (or is gone) or another
 * row's panel opens.
 *
 * The page gives: the <template id="close-panel-template"> (templates/trading/
 * _close_panel.html), the table bodies whose rows carry data-position-id,
 * data-symbol and cells data-field="quantity" (and "side" for perps) with
 * data-value, a button data-action="close-position" per row; a body is binary when
 * it has data-close-kind="binary" (the dashboard's #breakdown-rows too).
 *
 *   var closer = PortalClosePanel.attach({ template, bodies, simulationUrl, refresh });
 *   closer.redrawn();  // after the rows were re-drawn
 *
 * The positions page attaches it from static/js/positions.js.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;
  var QUANTITY_PLACES = 6;
  var format = window.PortalFormat;
  var page = window.PortalPage;

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
      return { error: "That is more than the position's " + format.qty(p.held, QUANTITY_PLACES) + "." };
    }
    return { quantity: text, post: { quantity: text } };
  }

  function closeResultText(body, binary) {
    var order = body.order;
    var filled = Number(order.filled_quantity) > 0;
    if (order.status === "cancelled" && filled) {
      return (order.side === "sell" ? "Sold " : "Bought ") + format.qty(order.filled_quantity, QUANTITY_PLACES) +
        " of " + format.qty(order.quantity, QUANTITY_PLACES) + " " + order.symbol + " at " +
        format.price(order.average_price, binary) + " on " + order.venue + "; the rest found no price " +
        "within the slippage limit and was cancelled.";
    }
    return body.message;
  }

  function attach(options) {
    var template = options.template;
    var bodies = (options.bodies || []).filter(Boolean);
    if (!template || !bodies.length) return null;
    var panel = null;

    function panelSimulate(p) {
      var summary = page.field("close_summary", p.form);
      var fillable = page.field("close_fillable", p.form);
      var box = page.q(".close-simulation", p.form);
      var size = closeSize(p);
      var mine = ++p.sequence;
      if (size.error) {
        box.setAttribute("data-zone", "error");
        page.setText(summary, size.error);
        page.setText(fillable, "");
        page.setField("close_health_before", null, "—", p.form);
        page.setField("close_health_after", null, "—", p.form);
        return;
      }
      var quantity = size.quantity === null ? p.held : size.quantity;
      if (!p.binary) {
        box.setAttribute("data-zone", "ok");
        page.setText(summary, "Closing " + format.qty(quantity, QUANTITY_PLACES) + " of " + format.qty(p.held, QUANTITY_PLACES) + " " +
          p.symbol + " (" + p.side + ") with an immediate-or-cancel order at the best " +
          (p.side === "short" ? "ask plus" : "bid less") + " 50 bps: its isolated margin and P&L return to cash.");
        return;
      }
      box.setAttribute("data-zone", "loading");
      var url = options.simulationUrl.replace("{id}", p.positionId) +
        (size.quantity === null ? "" : "?" + new URLSearchParams({ quantity: size.quantity }).toString());
      page.getJSON(url).then(function (answer) {
        if (mine !== p.sequence) return; // a newer size is being simulated
        if (!answer.ok) {
          box.setAttribute("data-zone", "error");
          page.setText(summary, answer.body.message || "No simulation is available right now.");
          page.setText(fillable, "");
          return;
        }
        var r = answer.body;
        var projection = r.projection;
        var f = r.fillable;
        box.setAttribute("data-zone", projection.zone);
        box.setAttribute("data-quantity", r.quantity);
        page.setText(summary, "Closing " + format.qty(r.quantity, QUANTITY_PLACES) + " of " + format.qty(r.held, QUANTITY_PLACES) + " " + r.symbol + ".");
        page.setField("close_health_before", projection.before.health, page.healthText(projection.before.health), p.form);
        page.setField("close_health_after", projection.after.health, page.healthText(projection.after.health), p.form);
        var where = f ? " at about " + format.cents(f.average_price) + " on " + f.venue +
          " (slippage " + format.number(f.slippage_bps, 2) + " bps)" : "";
        fillable.setAttribute("data-value", f ? f.quantity : "0");
        fillable.setAttribute("data-complete", f && f.complete ? "true" : "false");
        if (f && f.complete) {
          page.setText(fillable, "Fillable now: " + format.qty(f.quantity, QUANTITY_PLACES) + where + ", about " + format.money(f.proceeds) + ".");
        } else {
          page.setText(fillable, "The books cannot absorb it now: " + format.qty(f ? f.quantity : "0", QUANTITY_PLACES) + " of " +
            format.qty(r.quantity, QUANTITY_PLACES) + where + ". The close sells what they hold within 50 bps of the best " +
            "bid and cancels the rest.");
        }
      }).catch(function () {
        if (mine !== p.sequence) return;
        box.setAttribute("data-zone", "error");
        page.setText(summary, "Could not reach the server for a simulation.");
      });
    }

    function panelClose(restoreFocus) {
      var p = panel;
      if (!p) return;
      panel = null;
      p.sequence += 1;
      if (p.tr.parentNode) p.tr.parentNode.removeChild(p.tr);
      var button = page.q('[data-action="close-position"]', p.row);
      if (button) {
        button.setAttribute("aria-expanded", "false");
        button.removeAttribute("aria-controls");
        if (restoreFocus) button.focus();
      }
    }

    function isBinary(body) {
      return body.getAttribute("data-close-kind") === "binary" || body.id === "breakdown-rows";
    }

    function panelOpen(row) {
      var again = panel && panel.row === row;
      panelClose(false);
      if (again) return; // the same button again: it toggles
      var body = row.parentNode;
      var quantityCell = page.field("quantity", row);
      var sideCell = page.field("side", row);
      var form = template.content.firstElementChild.cloneNode(true);
      var tr = page.el("tr", { class: "close-panel-row" }, [
        page.el("td", { colspan: String(row.children.length) }, [form]),
      ]);
      var section = body.closest("section");
      var p = {
        row: row,
        tr: tr,
        form: form,
        bodyId: body.id,
        binary: isBinary(body),
        positionId: row.getAttribute("data-position-id"),
        symbol: row.getAttribute("data-symbol"),
        held: quantityCell.getAttribute("data-value").replace(/^-/, ""),
        side: sideCell ? sideCell.getAttribute("data-value") : "long",
        orderId: page.newOrderId(),
        sequence: 0,
        done: false,
        result: section ? page.field("close_result", section) : null,
      };
      form.id = "close-panel-" + p.positionId;
      form.setAttribute("data-position-id", p.positionId);
      form.setAttribute("data-symbol", p.symbol);
      page.setField("close_symbol", p.symbol, p.symbol, form);
      page.setField("close_held", p.held, format.qty(p.held, QUANTITY_PLACES), form);
      form.querySelectorAll("[data-binary-only]").forEach(function (node) {
        node.hidden = !p.binary;
      });
      var message = page.field("close_message", form);
      var confirm = page.q('[data-action="confirm-close"]', form);
      var button = page.q('[data-action="close-position"]', row);
      button.setAttribute("aria-expanded", "true");
      button.setAttribute("aria-controls", form.id);
      row.parentNode.insertBefore(tr, row.nextSibling);
      panel = p;

      var simulate = page.debounce(function () {
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
          page.say(message, size.error, "error");
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
        page.say(message, "Closing…", "info");
        page.post(form.action, data).then(function (answer) {
          // A definite answer: the next confirm is a new close (a lost answer keeps the
          // id, so confirming again cannot close twice).
          p.orderId = page.newOrderId();
          if (answer.ok) {
            var text = closeResultText(answer.body, p.binary);
            var order = answer.body.order;
            p.done = Number(order.filled_quantity) > 0 || order.status === "pending";
            form.setAttribute("data-state", p.done ? "done" : "idle");
            form.setAttribute("data-order-id", order.id);
            form.setAttribute("data-order-status", order.status);
            page.say(message, text, p.done ? "success" : "error");
            if (p.result) {
              page.say(p.result, text, p.done ? "success" : "error");
              p.result.setAttribute("data-order-id", order.id);
            }
            if (options.refresh) options.refresh();
          } else {
            form.setAttribute("data-state", "error");
            form.setAttribute("data-error-code", answer.body.code || "");
            page.say(message, answer.body.message || "The position was not closed.", "error");
          }
        }).catch(function () {
          form.setAttribute("data-state", "error");
          page.say(message, "No answer from the server: the position may or may not have been closed. " +
            "Confirming again is safe (it cannot close twice).", "error");
        }).finally(function () {
          confirm.disabled = p.done;
        });
      });

      showMode();
      panelSimulate(p);
      form.elements.close_mode[0].focus();
    }

    // Clicks are caught on the bodies' parents (tables), so bodies that are
    // re-drawn (replaced) keep working.
    bodies.forEach(function (body) {
      var table = body.closest("table") || body;
      table.addEventListener("click", function (event) {
        var button = event.target.closest('[data-action="close-position"]');
        if (button && table.contains(button)) panelOpen(button.closest("tr"));
      });
    });

    // The rows were re-drawn: keep the panel under the same position, or close it
    // when the position changed or is gone.
    function redrawn() {
      var p = panel;
      if (!p) return;
      var body = document.getElementById(p.bodyId);
      var row = body && body.querySelector('tr[data-position-id="' + p.positionId + '"]');
      var cell = row && page.field("quantity", row);
      var button = row && page.q('[data-action="close-position"]', row);
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
    }

    return { redrawn: redrawn, close: panelClose };
  }

  window.PortalClosePanel = { attach: attach };
})();
