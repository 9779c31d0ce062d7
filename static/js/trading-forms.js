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
  var page = window.PortalPage;

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
    var addFundsMessage = page.field("add_funds_message", addFunds);
    var lastAsked = null;
    var simulateAddFunds = function () {
      addFunds.setAttribute("data-state", "loading");
      page.getJSON(config.urls.add_funds).then(function (answer) {
        if (!answer.ok) {
          addFunds.setAttribute("data-state", "error");
          page.say(addFundsMessage, answer.body.message || "No simulation available.", "error");
          return;
        }
        var byName = {};
        answer.body.targets.forEach(function (target) {
          byName[target.name] = target;
        });
        page.setField("add_funds_healthy", byName.healthy.amount, format.money(byName.healthy.amount), addFunds);
        page.setField("add_funds_initial", byName.initial.amount, format.money(byName.initial.amount), addFunds);
        addFunds.setAttribute("data-state", "ready");
        var borrowing = Number(answer.body.before.used_margin) > 0;
        var text = "No borrowing: nothing to add.";
        if (borrowing && Number(byName.healthy.amount) > 0) {
          text = "A deposit of " + format.money(byName.healthy.amount) + " brings Margin Health to " +
            format.ratio(byName.healthy.target) + " (now " + format.ratio(answer.body.before.health) + ").";
        } else if (borrowing) {
          text = "Margin Health is already at or above " + format.ratio(byName.healthy.target) + ": nothing to add.";
        }
        page.say(addFundsMessage, text, "info");
      }).catch(function () {
        addFunds.setAttribute("data-state", "error");
        page.say(addFundsMessage, "Could not reach the server.", "error");
      });
    };
    page.q("#add-funds-simulate", addFunds).addEventListener("click", simulateAddFunds);
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
    var output = page.field("leverage_choice", market);
    var preview = page.q("dl.preview", market);
    var note = page.field("leverage_message", market);
    var mine = 0;

    var showPreview = function (r) {
      market.setAttribute("data-verdict", r.status);
      if (r.has_position) {
        preview.hidden = false;
        page.setField("margin_preview", r.new_isolated_margin,
          format.money(r.isolated_margin) + " → " + format.money(r.new_isolated_margin), market);
        page.setField("margin_change", r.margin_change, format.money(r.margin_change), market);
        page.setField("liquidation_preview", r.new_liquidation_price,
          format.number(r.liquidation_price, 2) + " → " + format.number(r.new_liquidation_price, 2), market);
      } else {
        preview.hidden = true;
      }
      page.say(note, (r.status === "REJECTED" ? "Would be rejected: " : "") + r.message,
        r.status === "REJECTED" ? "error" : "info");
    };

    var ask = page.debounce(function () {
      var leverage = slider.value;
      if (leverage === slider.getAttribute("data-current")) {
        preview.hidden = true;
        market.removeAttribute("data-verdict");
        page.say(note, "");
        return;
      }
      var id = ++mine;
      var url = config.urls.leverage_preview.replace("{symbol}", encodeURIComponent(symbol)) +
        "?leverage=" + encodeURIComponent(leverage);
      page.getJSON(url).then(function (answer) {
        if (id !== mine) return;
        if (answer.ok) showPreview(answer.body);
        else page.say(note, answer.body.message || "No preview available.", "error");
      });
    }, DEBOUNCE_MS);

    slider.addEventListener("input", function () {
      output.textContent = slider.value + "x";
      ask();
    });

    market.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = page.q('[data-action="apply-leverage"]', market);
      button.disabled = true;
      page.postForm(market).then(function (answer) {
        var r = answer.body;
        market.setAttribute("data-result", r.status || "error");
        if (r.status === "APPLIED") {
          slider.setAttribute("data-current", String(r.newLeverage));
          page.setField("leverage_current", r.newLeverage, r.newLeverage + "x", market);
          preview.hidden = true;
          page.say(note, r.message, "success");
          app.refreshSnapshot();
        } else if (r.status === "REJECTED") {
          slider.value = slider.getAttribute("data-current");
          output.textContent = slider.value + "x";
          page.say(note, "Rejected (" + r.rejectReason + "): " + r.message + " " + (r.explanation || ""), "error");
        } else {
          page.say(note, r.message || "Leverage was not changed.", "error");
        }
      }).catch(function () {
        page.say(note, "Could not reach the server.", "error");
      }).finally(function () {
        button.disabled = false;
      });
    });
  });
})();
