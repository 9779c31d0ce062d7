/* Prime Portal ops: the live risk desk (/ops/).
 *
 * The server renders the desk; this keeps it current without a reload. It joins
 * the staff socket `ws/ops/desk/`, which sends a bare "desk changed" hint after
 * each change that matters (margin calls, a health band crossed, liquidations,
 * withdrawals, KYB); on a hint it re-reads /ops/desk.json (debounced: a burst of
 * hints is one read) and re-renders the counters and lists. Without a socket
 * (closed, refused, never opened) it re-reads every 30 s; with one, every 2 min
 * as a safety net. Cells arrive formatted by the server (portal/format.py): they
 * are set as text, never as HTML.
 */
(function () {
  "use strict";

  var POLL_SECONDS = 30;
  var POLL_LIVE_SECONDS = 120;
  var DEBOUNCE_MS = 400;

  var root = document.getElementById("ops-desk");
  if (!root) {
    return;
  }
  var jsonUrl = root.getAttribute("data-json-url");
  var wsPath = root.getAttribute("data-ws-path");
  var liveLabel = root.querySelector("[data-desk-live]");
  var atLabel = root.querySelector("[data-desk-at]");
  var socket = null;
  var live = false;
  var debounce = null;
  var pollTimer = null;
  var loading = false;
  var again = false;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function tone(value) {
    return "ops-tone-" + (value || "none");
  }

  function renderCounters(counters) {
    var list = root.querySelector("[data-desk-counters]");
    var items = counters.map(function (counter) {
      var item = el("li", "ops-counter " + tone(counter.tone));
      item.setAttribute("data-counter", counter.key);
      var link = el("a");
      link.href = "#ops-section-" + (counter.section || counter.key);
      link.appendChild(el("span", "ops-counter-value", String(counter.value)));
      link.appendChild(document.createTextNode(" "));
      link.appendChild(el("span", "ops-counter-label", counter.label));
      item.appendChild(link);
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  function renderSection(section) {
    var box = el("section", "module ops-section");
    box.id = "ops-section-" + section.key;
    box.setAttribute("data-section", section.key);
    var title = el("h2", null, section.title + " ");
    var total = "(" + section.total + (section.total_label ? " " + section.total_label : "") + ")";
    title.appendChild(el("span", "ops-section-total", total));
    box.appendChild(title);
    if (section.note) {
      box.appendChild(el("p", "help ops-note", section.note));
    }
    if (section.rows.length) {
      var table = el("table", "ops-table");
      var head = el("thead");
      var headRow = el("tr");
      section.columns.forEach(function (column) {
        var th = el("th", null, column);
        th.scope = "col";
        headRow.appendChild(th);
      });
      var actionTh = el("th");
      actionTh.scope = "col";
      actionTh.appendChild(el("span", "visually-hidden", "Action"));
      headRow.appendChild(actionTh);
      head.appendChild(headRow);
      table.appendChild(head);
      var body = el("tbody");
      section.rows.forEach(function (row) {
        var tr = el("tr", "ops-row " + tone(row.tone));
        tr.setAttribute("data-key", row.key);
        row.cells.forEach(function (cell) {
          tr.appendChild(el("td", null, cell));
        });
        var action = el("td");
        if (row.href) {
          var link = el("a", null, "Open");
          link.href = row.href;
          action.appendChild(link);
        }
        tr.appendChild(action);
        body.appendChild(tr);
      });
      table.appendChild(body);
      box.appendChild(table);
      if (section.total > section.rows.length && !section.total_label) {
        box.appendChild(
          el("p", "help", "Showing " + section.rows.length + " of " + section.total + ".")
        );
      }
    } else if (section.empty) {
      box.appendChild(el("p", "ops-empty", section.empty));
    }
    return box;
  }

  function render(desk) {
    renderCounters(desk.counters);
    var holder = root.querySelector("[data-desk-sections]");
    holder.replaceChildren.apply(holder, desk.sections.map(renderSection));
    atLabel.textContent = desk.at_display;
    root.setAttribute("data-desk-version", desk.at);
  }

  function load() {
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    fetch(jsonUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          return response.json().then(function (body) {
            socket.stop();
            live = false;
            setLive(body.message || "Sign in again to keep the desk current.");
            return null;
          });
        }
        if (!response.ok) {
          throw new Error("desk " + response.status);
        }
        return response.json();
      })
      .then(function (desk) {
        if (desk) {
          render(desk);
        }
      })
      .catch(function () {
        setLive("Could not refresh the desk; trying again shortly.");
      })
      .then(function () {
        loading = false;
        if (again) {
          again = false;
          load();
        }
        schedulePoll();
      });
  }

  function hint() {
    if (debounce) {
      clearTimeout(debounce);
    }
    debounce = setTimeout(function () {
      debounce = null;
      load();
    }, DEBOUNCE_MS);
  }

  function schedulePoll() {
    if (pollTimer) {
      clearTimeout(pollTimer);
    }
    pollTimer = setTimeout(load, (live ? POLL_LIVE_SECONDS : POLL_SECONDS) * 1000);
  }

  function setLive(text) {
    liveLabel.textContent = text;
    root.setAttribute("data-desk-live", live ? "yes" : "no");
  }

  // The socket: PortalPage.liveSocket (reconnects by itself; 4401 / 4403 stop it).
  function onSocketState(state) {
    var wasLive = live;
    live = state === "open";
    if (state === "open") {
      setLive("Live");
      schedulePoll();
      return;
    }
    if (state === "connecting") {
      setLive("Connecting…");
    } else if (state === "reconnecting") {
      setLive("Reconnecting; refreshing every " + POLL_SECONDS + " s meanwhile.");
    } else if (state === "unsupported") {
      setLive("Refreshing every " + POLL_SECONDS + " s.");
    } else {
      setLive("Live updates are off (sign in again with your code); refreshing every " +
        POLL_SECONDS + " s.");
    }
    if (wasLive) {
      schedulePoll();
    }
  }

  root.querySelector("[data-desk-refresh]").addEventListener("click", load);
  schedulePoll();
  socket = window.PortalPage.liveSocket(wsPath, {
    onState: onSocketState,
    onOpen: load, // anything missed while connecting
    onMessage: function (message) {
      if (message.type === "desk_changed") {
        hint();
      }
    },
  });
})();
