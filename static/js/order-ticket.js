/* The dashboard's order ticket (templates/trading/_order_ticket.html).
 *
 * Contract search (the server's ticket/markets.json), YES / NO with the live bid and
 * ask in cents and a depth chart (ticket/book.json, every few seconds and on every
 * live update), market / limit, time in force, take-profit / stop-loss, notional or
 * contracts, a perp's leverage; the projection from the one check the order's path
 * runs (projection.json); a confirmation dialog above the ops-set size; the result
 * as a sentence with a link to the order. On phones (≤ 600 px) it is a bottom sheet
 * behind a "Trade" bar.
 *
 * Every figure and sentence comes from the server; numbers shown here go through
 * window.PortalFormat. The form posts without scripts too (the server refuses a
 * large order without its confirmation box ticked).
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 300;
  var BOOK_REFRESH_MS = 3000;
  var PRICE_UNITS = 100000000; // prices arrive with 8 decimals

  var app = window.PrimeDashboard;
  var format = window.PortalFormat;
  var page = window.PortalPage;
  var section = document.getElementById("order-entry");
  var form = document.getElementById("order-form");
  if (!app || !format || !page || !section || !form) return;
  var urls = app.config.urls;

  var projection = document.getElementById("order-projection");
  var message = document.getElementById("order-message");
  var submit = document.getElementById("order-submit");
  var select = document.getElementById("order-symbol");
  var search = document.getElementById("ticket-search");
  var depth = document.getElementById("ticket-depth");
  var dialog = document.getElementById("ticket-confirm");
  var toggle = document.getElementById("ticket-toggle");
  var body = document.getElementById("ticket-body");

  var markets = {}; // symbol → the server's market row (quotes, kind, leverage)
  var book = null; // the selected contract's depth
  var last = null; // {key, result}: the latest projection and the fields it was for
  var sequence = 0;
  var bookSequence = 0;
  var busy = false;

  // --- Small helpers (the shared ones are window.PortalPage's, static/js/page.js) ---------

  // A figure of the ticket (or of `scope`).
  function field(name, scope) {
    return page.field(name, scope || section);
  }

  function setField(name, value, text, scope) {
    page.setField(name, value, text, scope || section);
  }

  function value(name) {
    var element = form.elements[name];
    if (!element) return "";
    return String(element.value || "").trim();
  }

  // 1 − price, exactly (prices are decimal strings with at most 8 decimals).
  function complement(price) {
    if (format.isBlank(price)) return null;
    var parts = String(price).split(".");
    var fraction = ((parts[1] || "") + "00000000").slice(0, 8);
    var units = PRICE_UNITS - (Number(parts[0] || "0") * PRICE_UNITS + Number(fraction));
    var text = String(units);
    while (text.length < 9) text = "0" + text;
    return text.slice(0, text.length - 8) + "." + text.slice(text.length - 8);
  }

  // --- What is selected -----------------------------------------------------------------

  function market() {
    return markets[select.value] || null;
  }

  function isBinary() {
    var row = market();
    if (row) return row.binary;
    var option = select.options[select.selectedIndex];
    return !(option && option.parentNode && option.parentNode.label === "Perpetuals");
  }

  function outcome() {
    var checked = page.q('input[name="outcome"]:checked', form);
    return checked ? checked.value : "yes";
  }

  function contract() {
    return select.value + (isBinary() && outcome() === "no" ? ":NO" : "");
  }

  function contractLabel() {
    return isBinary() ? select.value + " " + outcome().toUpperCase() : select.value;
  }

  function priceText(value) {
    return format.price(value, isBinary());
  }

  // --- Quotes and depth -----------------------------------------------------------------

  function quoteText(quote) {
    if (!quote || (format.isBlank(quote.bid) && format.isBlank(quote.ask))) return "no live price";
    return priceText(quote.bid) + " · " + priceText(quote.ask);
  }

  function showQuotes() {
    var row = market();
    var quotes = row ? row.quotes : {};
    if (isBinary()) {
      setField("quote_yes", quotes.yes ? quotes.yes.ask : null, quoteText(quotes.yes));
      setField("quote_no", quotes.no ? quotes.no.ask : null, quoteText(quotes.no));
    } else {
      setField("quote_perp", quotes.perp ? quotes.perp.ask : null, quoteText(quotes.perp));
    }
    var current = isBinary() ? quotes[outcome()] : quotes.perp;
    setField("bar_quote", current ? current.ask : null, contractLabel() + " " + quoteText(current));
  }

  function drawDepth(data) {
    if (!depth) return;
    page.clear(depth);
    var W = 300, H = 110, left = 4, right = 4, top = 14, bottom = 16;
    var bids = data ? data.bids : [];
    var asks = data ? data.asks : [];
    if (!bids.length && !asks.length) {
      depth.setAttribute("aria-label", "No order book for " + contractLabel() + " right now.");
      return;
    }
    var prices = bids.concat(asks).map(function (level) { return Number(level.price); });
    var low = Math.min.apply(null, prices), high = Math.max.apply(null, prices);
    if (high === low) { low -= 0.01; high += 0.01; }
    var deepest = Math.max(
      bids.length ? Number(bids[bids.length - 1].cumulative) : 0,
      asks.length ? Number(asks[asks.length - 1].cumulative) : 0) || 1;
    var x = function (p) { return left + (p - low) / (high - low) * (W - left - right); };
    var y = function (c) { return H - bottom - c / deepest * (H - bottom - top); };
    var side = function (levels, edge, className) {
      if (!levels.length) return;
      var points = [[x(Number(levels[0].price)), y(0)]];
      var previous = 0;
      levels.forEach(function (level) {
        var px = x(Number(level.price));
        points.push([px, y(previous)], [px, y(Number(level.cumulative))]);
        previous = Number(level.cumulative);
      });
      points.push([x(edge), y(previous)], [x(edge), y(0)]);
      depth.appendChild(page.svg("path", { d: page.svgPath(points) + " Z", "class": className }));
    };
    side(bids, low, "depth-bids");
    side(asks, high, "depth-asks");
    if (bids.length && asks.length) {
      var mid = x((Number(bids[0].price) + Number(asks[0].price)) / 2).toFixed(1);
      depth.appendChild(page.svg("line", { x1: mid, x2: mid, y1: top, y2: H - bottom, "class": "depth-mid" }));
    }
    var label = function (text, px, py, anchor) {
      depth.appendChild(page.svg("text", { x: px, y: py, "text-anchor": anchor, "class": "depth-axis" }, text));
    };
    var lowText = priceText(bids.length ? bids[bids.length - 1].price : asks[0].price);
    var highText = priceText(asks.length ? asks[asks.length - 1].price : bids[0].price);
    label(lowText, left, H - 4, "start");
    label(highText, W - right, H - 4, "end");
    label(format.qty(String(deepest), 0) + " contracts", left, 10, "start");
    var bidText = bids.length ? format.qty(bids[bids.length - 1].cumulative, 0) + " contracts bid down to " +
      priceText(bids[bids.length - 1].price) : "no bids";
    var askText = asks.length ? format.qty(asks[asks.length - 1].cumulative, 0) + " offered up to " +
      priceText(asks[asks.length - 1].price) : "no asks";
    depth.setAttribute("aria-label", "Order book depth of " + contractLabel() + ": " + bidText + "; " + askText + ".");
    setField("depth_note", data.venues.join(","), "Depth of " + contractLabel() + " on " + (data.venue_names || data.venues).join(" and ") +
      ": bids (left) and asks (right), cumulative contracts.");
  }

  function quotesFromBook(data) {
    var row = market();
    if (!row) return;
    var own = { bid: data.bid, ask: data.ask };
    if (!row.binary) {
      row.quotes = { perp: own };
      return;
    }
    var other = { bid: complement(data.ask), ask: complement(data.bid) };
    row.quotes = /:NO$/.test(data.symbol) ? { yes: other, no: own } : { yes: own, no: other };
  }

  function refreshBook() {
    if (document.visibilityState === "hidden" || !select.value) return;
    var wanted = contract();
    var mine = ++bookSequence;
    page.getJSON(urls.ticket_book + "?" + new URLSearchParams({ symbol: wanted }).toString()).then(function (answer) {
      if (mine !== bookSequence || wanted !== contract()) return;
      if (answer.ok) {
        book = answer.body;
        quotesFromBook(book);
        drawDepth(book);
      } else {
        book = null;
        var row = market();
        if (row) row.quotes = row.binary ? { yes: null, no: null } : { perp: null };
        drawDepth(null);
        setField("depth_note", "", answer.body.message || "No order book right now.");
      }
      showQuotes();
    }).catch(function () { /* the next refresh tries again */ });
  }

  // --- Markets and the search ------------------------------------------------------------

  function optionsRebuild(rows) {
    var keep = select.value;
    var groups = [["Prediction markets", rows.filter(function (r) { return r.binary; })],
      ["Perpetuals", rows.filter(function (r) { return !r.binary; })]];
    page.clear(select);
    groups.forEach(function (group) {
      if (!group[1].length) return;
      select.appendChild(page.el("optgroup", { label: group[0] }, group[1].map(function (row) {
        return page.el("option", { value: row.symbol, text: row.symbol + " — " + row.title });
      })));
    });
    var still = rows.some(function (row) { return row.symbol === keep; });
    if (still) select.value = keep;
    return !still;
  }

  function marketsLoad(query) {
    return page.getJSON(urls.ticket_markets + "?" + new URLSearchParams({ q: query || "" }).toString()).then(function (answer) {
      if (!answer.ok) return null;
      answer.body.markets.forEach(function (row) {
        markets[row.symbol] = row;
      });
      return answer.body.markets;
    });
  }

  var searchRun = page.debounce(function () {
    var query = search.value.trim();
    marketsLoad(query).then(function (rows) {
      if (rows === null || query !== search.value.trim()) return;
      if (!rows.length) {
        setField("search_count", 0, "No open market matches “" + query + "”.");
        return;
      }
      setField("search_count", rows.length, rows.length === 1 ? "1 market matches." : rows.length + " markets match.");
      if (optionsRebuild(rows)) contractChanged();
      else showQuotes();
    });
  }, 250);

  // --- Which fields apply -----------------------------------------------------------------

  function showAll(selector, shown) {
    form.querySelectorAll(selector).forEach(function (node) {
      node.hidden = !shown;
    });
  }

  function leverageOptions() {
    var row = market();
    var chooser = form.elements.leverage;
    if (!chooser || !row || row.binary) return;
    if (chooser.getAttribute("data-market") === row.symbol) return;
    chooser.setAttribute("data-market", row.symbol);
    while (chooser.options.length) chooser.remove(0);
    chooser.add(new Option("In force: " + row.leverage + "x", ""));
    for (var level = 1; level <= row.max_leverage; level += 1) chooser.add(new Option(level + "x", String(level)));
  }

  function layout() {
    var binary = isBinary();
    var limit = value("order_type") === "limit";
    var sizeRadios = form.querySelectorAll('input[name="size_mode"]');
    sizeRadios.forEach(function (radio) {
      if (radio.value === "notional") radio.disabled = limit;
    });
    if (limit && value("size_mode") !== "quantity") {
      page.q('input[name="size_mode"][value="quantity"]', form).checked = true;
    }
    var mode = limit ? "quantity" : value("size_mode") || "notional";
    form.querySelectorAll("[data-size]").forEach(function (node) {
      node.hidden = node.getAttribute("data-size") !== mode;
    });
    showAll("[data-binary-only]", binary);
    showAll("[data-perp-only]", !binary);
    showAll("[data-limit-only]", limit);
    showAll("[data-market-only]", !limit);
    var sellingBinary = binary && value("side") === "sell";
    var triggers = page.q(".ticket-triggers", form);
    if (triggers) triggers.hidden = !limit || sellingBinary;
    var tif = form.elements.time_in_force;
    tif.options[0].disabled = !limit; // GTC rests: a limit order's
    if (!limit && tif.value === "gtc") tif.value = "ioc";
    if (limit && !tif.getAttribute("data-touched")) tif.value = "gtc";
    setField("price_unit", binary ? "cents" : "usdc", binary ? "(¢ a contract, e.g. 46)" : "(USDC)");
    leverageOptions();
    showQuotes();
  }

  // --- The projection ---------------------------------------------------------------------

  // The order's fields as the ticket shows them: a field in a hidden part (take-profit
  // of a market order, the notional when sizing in contracts) is not sent.
  function fields() {
    var data = new FormData();
    Array.prototype.forEach.call(form.elements, function (element) {
      if (!element.name || element.disabled || element.closest("[hidden]")) return;
      if ((element.type === "radio" || element.type === "checkbox") && !element.checked) return;
      var text = String(element.value).trim();
      if (text !== "") data.append(element.name, text);
    });
    if (value("order_type") === "limit") data.set("size_mode", "quantity");
    return data;
  }

  function params() {
    var data = fields();
    ["csrfmiddlewaretoken", "client_order_id", "confirmed"].forEach(function (name) {
      data.delete(name);
    });
    var out = new URLSearchParams();
    data.forEach(function (v, k) {
      out.append(k, v);
    });
    return out;
  }

  function sized() {
    var limit = value("order_type") === "limit";
    var mode = limit ? "quantity" : value("size_mode");
    var size = mode === "quantity" ? value("quantity") : value("notional_usdc");
    return size !== "" && Number(size.replace(/,/g, "")) > 0 && (!limit || value("price") !== "");
  }

  function resetProjection() {
    projection.setAttribute("data-zone", "idle");
    ["projected_health", "estimate", "fees", "slippage", "buying_power", "buying_power_fillable",
      "isolated_margin", "liquidation_price"].forEach(function (name) {
      setField(name, null, "—", projection);
    });
    ["fill_text", "zone_message", "confirm_note", "max_size_note"].forEach(function (name) {
      page.say(field(name, projection), "");
    });
    var summary = app.snapshot().summary;
    setField("health_before", summary.health, page.healthText(summary.health), projection);
    last = null;
  }

  function estimateText(r) {
    if (r.path === "order" && !(Number(r.quantity) > 0)) return "Nothing fills now";
    return format.qty(r.quantity) + " at " + priceText(r.average_price) + " on " + (r.venue_name || r.venue);
  }

  function showProjection(r, key) {
    last = { key: key, result: r };
    var p = r.projection;
    var perp = r.kind === "perpetual";
    projection.setAttribute("data-zone", p ? p.zone : "ok");
    projection.setAttribute("data-valid", p && !p.is_valid_trade ? "false" : "true");
    projection.setAttribute("data-path", r.path);
    if (p) {
      setField("health_before", p.before.health, page.healthText(p.before.health), projection);
      setField("projected_health", p.after.health, page.healthText(p.after.health), projection);
    } else {
      var summary = app.snapshot().summary;
      setField("health_before", summary.health, page.healthText(summary.health), projection);
      setField("projected_health", null, r.reduces_risk ? "Unchanged or better: it only reduces risk" : "—", projection);
    }
    setField("estimate", r.quantity, estimateText(r), projection);
    var fees = format.money(r.fees);
    if (r.fees_max && r.fees_max !== r.fees) fees += " (checked at up to " + format.money(r.fees_max) + ")";
    setField("fees", r.fees, fees, projection);
    setField("slippage", r.slippage_bps, r.slippage_verdict || "—", projection);
    var max = r.max_size || {};
    // USDC for an order by notional (and a buy's margin limit), contracts for one in contracts.
    var maxText = function (v) {
      if (format.isBlank(v)) return "—";
      return max.unit === "contracts" ? format.qty(v, 6) + " contracts" : format.money(v); // never rounded up
    };
    setField("buying_power", max.at_initial, maxText(max.at_initial), projection);
    setField("buying_power_fillable", max.at_book_depth, maxText(max.at_book_depth), projection);
    if (max.depth) page.setText(field("buying_power_fillable_depth", projection), max.depth);
    page.say(field("max_size_note", projection), max.note || "");
    if (perp) {
      setField("isolated_margin", r.isolated_margin,
        format.isBlank(r.isolated_margin) ? "—" : format.money(r.isolated_margin) + " at " + r.leverage + "x", projection);
      setField("liquidation_price", r.liquidation_price,
        format.isBlank(r.liquidation_price) ? "—" : format.perpPrice(r.liquidation_price), projection);
    }
    page.say(field("fill_text", projection), r.fill_text || "");
    var text = "";
    var kind = "info";
    if (p && p.zone === "danger") {
      text = p.refusal || "Projected Margin Health is below the initial requirement: this order would be refused.";
      kind = "error";
    } else if (p && p.zone === "warning") {
      text = "Caution: projected Margin Health is below " + format.ratio(app.snapshot().thresholds.healthy) + ".";
      kind = "warning";
    }
    page.say(field("zone_message", projection), text, kind);
    page.say(field("confirm_note", projection), r.confirm && r.confirm.required ? r.confirm.message.replace("please confirm it", "you will be asked to confirm it") : "");
  }

  var project = page.debounce(function () {
    if (!sized()) {
      sequence += 1;
      resetProjection();
      return;
    }
    var query = params();
    var key = query.toString();
    var mine = ++sequence;
    projection.setAttribute("data-zone", "loading");
    page.getJSON(urls.projection + "?" + key).then(function (answer) {
      if (mine !== sequence) return; // a newer request is on its way
      if (answer.ok) return showProjection(answer.body, key);
      resetProjection();
      projection.setAttribute("data-zone", "error");
      page.say(field("zone_message", projection), answer.body.message || "No projection available.", "error");
    }).catch(function () {
      if (mine !== sequence) return;
      projection.setAttribute("data-zone", "error");
      page.say(field("zone_message", projection), "Could not reach the server for a projection.", "error");
    });
  }, DEBOUNCE_MS);

  // --- Contract changes --------------------------------------------------------------------

  function clearMessage() {
    page.say(message, "");
    ["data-order-id", "data-order-status", "data-error-code"].forEach(function (name) {
      message.removeAttribute(name);
    });
  }

  function contractChanged() {
    clearMessage(); // an old error (or result) is about the previous contract
    book = null;
    drawDepth(null);
    layout();
    resetProjection();
    refreshBook();
    project();
  }

  form.addEventListener("change", function (event) {
    var name = event.target.name;
    if (name === "time_in_force") event.target.setAttribute("data-touched", "true");
    if (name === "symbol" || name === "outcome") return contractChanged();
    if (name === "side" || name === "order_type" || name === "size_mode") layout();
    project();
  });
  form.addEventListener("input", function (event) {
    if (event.target === search) return;
    project();
  });
  if (search) {
    search.addEventListener("input", searchRun);
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { // choose, don't submit
        event.preventDefault();
        select.focus();
      }
    });
  }

  // --- Placing the order and its confirmation ------------------------------------------

  function summaryText() {
    var side = value("side") === "sell" ? "Sell" : "Buy";
    var limit = value("order_type") === "limit";
    var tif = form.elements.time_in_force;
    var tifText = tif.options[tif.selectedIndex].textContent.toLowerCase();
    var size = limit || value("size_mode") === "quantity"
      ? format.qty(value("quantity").replace(/,/g, "")) + " " + contractLabel()
      : format.money(value("notional_usdc").replace(/,/g, "")) + " of " + contractLabel();
    var how = limit
      ? "limit " + (isBinary() ? format.qty(value("price").replace(/,/g, ""), 4) + "¢" : format.perpPrice(value("price").replace(/,/g, ""))) + ", " + tifText
      : "at market, " + (value("size_mode") === "quantity" ? tifText : "at most " + (value("slippage_bps") || "50") + " bps of slippage");
    var text = side + " " + size + ", " + how + ".";
    if (last && last.key === params().toString()) {
      var r = last.result;
      text += " Estimated fill: " + estimateText(r) + "; fees " + format.money(r.fees) + ".";
      if (r.projection) text += " Margin Health after: " + page.healthText(r.projection.after.health) + ".";
    }
    return text;
  }

  function showResult(result) {
    message.textContent = "";
    message.setAttribute("data-kind", "success");
    message.appendChild(document.createTextNode(result.message));
    if (result.url) {
      message.appendChild(page.el("a", { href: result.url, "data-order-link": result.order.id, text: "View order" }));
    }
    message.setAttribute("data-order-id", result.order.id);
    message.setAttribute("data-order-status", result.order.status);
  }

  function place(confirmed) {
    if (busy) return;
    busy = true;
    submit.disabled = true;
    clearMessage();
    page.say(message, "Placing the order…", "info");
    var data = fields();
    data.set("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    data.set("client_order_id", form.elements.client_order_id.value);
    data.delete("confirmed");
    if (confirmed) data.set("confirmed", "1");
    page.post(form.action, data).then(function (answer) {
      if (answer.status === 409 && answer.body.confirm_required) {
        clearMessage();
        return askConfirmation(answer.body.message);
      }
      // A definite answer: the next order gets a new id (a lost answer keeps it, so a
      // retry cannot place the order twice).
      form.elements.client_order_id.value = page.newOrderId();
      if (answer.ok) {
        showResult(answer.body);
        form.elements.notional_usdc.value = "";
        form.elements.quantity.value = "";
        resetProjection();
        app.refreshSnapshot();
      } else {
        page.say(message, answer.body.message || "The order was not placed.", "error");
        message.setAttribute("data-error-code", answer.body.code || "");
      }
    }).catch(function () {
      page.say(message, "No answer from the server: the order may or may not have been placed. " +
        "Submitting again is safe (it cannot be placed twice).", "error");
    }).finally(function () {
      busy = false;
      submit.disabled = false;
    });
  }

  function askConfirmation(reason) {
    if (!dialog || typeof dialog.showModal !== "function") {
      // No <dialog>: the page's own confirmation box.
      var box = field("confirm_box");
      if (box) box.hidden = false;
      page.say(message, reason, "error");
      return;
    }
    setField("confirm_summary", "", summaryText(), dialog);
    setField("confirm_reason", "", reason || "", dialog);
    dialog.returnValue = "";
    dialog.showModal();
    page.q('[data-action="cancel-order"]', dialog).focus(); // the safe choice has focus
  }

  if (dialog) {
    dialog.addEventListener("click", function (event) {
      if (event.target.closest('[data-action="confirm-order"]')) dialog.close("confirm");
      else if (event.target.closest('[data-action="cancel-order"]')) dialog.close("cancel");
    });
    dialog.addEventListener("close", function () {
      if (dialog.returnValue === "confirm") {
        place(true);
      } else {
        page.say(message, "Not placed: you cancelled the confirmation.", "info");
      }
      submit.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var key = params().toString();
    if (last && last.key === key && last.result.confirm && last.result.confirm.required) {
      askConfirmation(last.result.confirm.message);
      return;
    }
    place(false);
  });

  // --- Phone: a bottom sheet ---------------------------------------------------------------

  var phone = window.matchMedia ? window.matchMedia("(max-width: 600px)") : null;

  function sheet(open) {
    section.setAttribute("data-sheet", open ? "open" : "closed");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function sheetLayout() {
    if (phone && phone.matches) {
      toggle.hidden = false;
      if (!section.hasAttribute("data-sheet")) sheet(false);
    } else {
      toggle.hidden = true;
      section.removeAttribute("data-sheet");
      toggle.setAttribute("aria-expanded", "false");
    }
  }

  if (toggle && body) {
    toggle.addEventListener("click", function () {
      var open = section.getAttribute("data-sheet") !== "open";
      sheet(open);
      if (open) (search || select).focus();
    });
    section.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && section.getAttribute("data-sheet") === "open" && !(dialog && dialog.open)) {
        sheet(false);
        toggle.focus();
      }
    });
    if (phone) {
      if (phone.addEventListener) phone.addEventListener("change", sheetLayout);
      else if (phone.addListener) phone.addListener(sheetLayout);
    }
    sheetLayout();
  }

  // --- Start ---------------------------------------------------------------------------------

  form.querySelectorAll("[data-script-only]").forEach(function (node) {
    node.hidden = false;
  });
  var confirmBox = field("confirm_box");
  if (confirmBox && dialog && typeof dialog.showModal === "function") {
    confirmBox.hidden = true; // the dialog asks instead
    form.elements.confirmed.checked = false;
  }
  marketsLoad("").then(function () {
    layout();
    refreshBook();
  });
  layout();
  resetProjection();
  setInterval(refreshBook, BOOK_REFRESH_MS);
  // A live update (a tick, a fill): fresh quotes and a fresh projection.
  var refreshSoon = page.debounce(function () {
    refreshBook();
    if (last) project();
  }, 500);
  app.onSnapshot(function () {
    if (projection.getAttribute("data-zone") === "idle") {
      var summary = app.snapshot().summary;
      setField("health_before", summary.health, page.healthText(summary.health), projection);
    }
    refreshSoon();
  });
})();
