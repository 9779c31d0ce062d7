/* The positions page, live (templates/trading/position_list.html).
 *
 * It follows the account's dashboard socket (PortalPage.liveSocket): after a push
 * (a price tick's "margin" update, an "order", a "margin_call") and on every
 * (re)connect, it re-reads the page and swaps in the elements marked data-refresh
 * (rows, totals, notes), at most every REFRESH_MIN_MS, so the server's one presenter
 * formats every figure. A re-read answered 401 (signed out) stops it.
 * #live-status[data-socket] tells tests and people the socket's state, as on the
 * dashboard. Custodial accounts get each row's Close… panel (close-panel.js), which
 * follows its row through the re-reads and asks for one after a close.
 */
(function () {
  "use strict";

  var REFRESH_MIN_MS = 2000;

  var configNode = document.getElementById("positions-config");
  if (!configNode) return;
  var config = JSON.parse(configNode.textContent);
  var page = window.PortalPage;
  var status = document.getElementById("live-status");
  var closer = null;
  var live = null;
  var reading = false;
  var readAgain = false;
  var lastRead = Date.now(); // the page as served
  var timer = null;

  function setSocketState(state) {
    page.socketStatusShow(status, state);
  }

  // Re-read the page now and swap in what changed; the panel follows its row or closes.
  function refresh() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (reading) {
      readAgain = true;
      return;
    }
    reading = true;
    lastRead = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 401 || response.redirected) {
          setSocketState("unauthorized");
          if (live) live.stop();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-refresh][id]").forEach(function (node) {
          var replacement = fresh.getElementById(node.id);
          if (replacement) node.replaceWith(document.importNode(replacement, true));
        });
        if (closer) closer.redrawn();
      })
      .catch(function () { /* the figures stay as they were; the next push tries again */ })
      .finally(function () {
        reading = false;
        if (readAgain) {
          readAgain = false;
          refreshSoon();
        }
      });
  }

  // Re-read once REFRESH_MIN_MS have passed since the last read (pushes coalesce).
  function refreshSoon() {
    if (timer) return;
    timer = setTimeout(refresh, Math.max(0, lastRead + REFRESH_MIN_MS - Date.now()));
  }

  var template = document.getElementById("close-panel-template");
  if (template && window.PortalClosePanel) {
    closer = window.PortalClosePanel.attach({
      template: template,
      bodies: Array.prototype.slice.call(document.querySelectorAll("tbody[data-close-kind]")),
      simulationUrl: config.urls.close,
      refresh: refresh,
    });
  }
  live = page.liveSocket(config.ws_path, {
    onState: setSocketState,
    onOpen: refreshSoon,
    onMessage: function (message) {
      if (message.type === "margin" || message.type === "order" || message.type === "margin_call") {
        refreshSoon();
      }
    },
  });
})();
