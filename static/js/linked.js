/* The Linked exchanges page: "Sync now" updates its row.
 *
 * The sync is a Celery task that runs after the request that asks for it, so the
 * page a plain form post redirects to shows the row as it was. Here the form is
 * posted with fetch (Accept: application/json: 202 with the row's status and the
 * server's `requested_at`), the row says "Syncing…", and the row's status URL
 * (linked/<account>/status.json) is polled until the sync has run (no sync queued
 * or running, and an attempt at or after `requested_at`); then the status badge,
 * the error line, the venue cash and the last sync time are rewritten in place.
 * A row the server renders as syncing (data-syncing="true") is polled the same way.
 * Without JavaScript the form still posts and the page says the sync was requested.
 */
(function () {
  "use strict";

  var POLL_MS = 1500;
  var SLOW_POLL_MS = 10000;
  var PATIENCE_MS = 60000;
  var format = window.PortalFormat;
  var page = window.PortalPage;

  function setState(row, text) {
    var node = page.field("sync_state", row);
    if (node) node.textContent = text;
  }

  function render(row, status) {
    row.setAttribute("data-link-status", status.status);
    row.setAttribute("data-syncing", status.syncing ? "true" : "false");
    var badge = page.field("link_status", row);
    if (badge) badge.replaceChildren(page.el("span", { class: "badge badge--" + status.status, text: status.status_label }));
    var error = page.field("last_error", row);
    if (error) {
      var text = status.last_error || "";
      if (text && status.next_sync_at) text += " Next try " + format.when(status.next_sync_at) + ".";
      error.textContent = text;
      error.hidden = !text;
    }
    var cash = page.field("link_cash", row);
    if (cash) {
      if (status.cash === null || status.cash === undefined) {
        cash.replaceChildren(page.el("span", { class: "muted", text: "—" }));
      } else {
        cash.textContent = format.money(status.cash);
      }
    }
    var synced = page.field("last_synced", row);
    if (synced) {
      synced.replaceChildren(status.last_synced_at
        ? page.el("time", { datetime: status.last_synced_at, text: format.when(status.last_synced_at) })
        : page.el("span", { class: "muted", text: "not yet" }));
    }
  }

  function done(status, requestedAt) {
    if (status.syncing) return false;
    if (!requestedAt) return true;
    return !!status.last_sync_attempt_at &&
      Date.parse(status.last_sync_attempt_at) >= Date.parse(requestedAt);
  }

  function poll(row, requestedAt) {
    var url = row.getAttribute("data-status-url");
    var started = Date.now();
    row.setAttribute("data-syncing", "true");
    setState(row, "Syncing…");
    function again() {
      var late = Date.now() - started > PATIENCE_MS;
      if (late) setState(row, "Still waiting for the sync to run: this row updates when it does.");
      setTimeout(tick, late ? SLOW_POLL_MS : POLL_MS);
    }
    function tick() {
      page.getJSON(url)
        .then(function (answer) {
          if (!answer.ok) throw new Error("status " + answer.status);
          var status = answer.body;
          if (!done(status, requestedAt)) return again();
          render(row, status);
          setState(row, status.status === "active" ? "Synced." :
            status.status === "failing" ? "The sync failed: the reason is below." : "");
          var button = row.querySelector('[data-action="sync-now"] button');
          if (button) button.disabled = false;
        })
        .catch(function () {
          setState(row, "Could not read the sync status: reload the page to see it.");
          var button = row.querySelector('[data-action="sync-now"] button');
          if (button) button.disabled = false;
        });
    }
    setTimeout(tick, POLL_MS);
  }

  function syncNow(event) {
    var form = event.target.closest('form[data-action="sync-now"]');
    if (!form) return;
    event.preventDefault();
    var row = form.closest("tr[data-status-url]");
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    setState(row, "Syncing…");
    page.postForm(form)
      .then(function (result) {
        if (!result.ok) {
          setState(row, result.body.message || "The sync could not be requested.");
          if (button) button.disabled = false;
          return;
        }
        poll(row, result.body.requested_at);
      })
      .catch(function () {
        setState(row, "The sync could not be requested: check your connection and try again.");
        if (button) button.disabled = false;
      });
  }

  document.addEventListener("submit", syncNow);
  document.querySelectorAll('tr[data-status-url][data-syncing="true"]').forEach(function (row) {
    poll(row, null);
  });
})();
