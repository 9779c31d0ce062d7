/* Prime Portal: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

  var page = window.PortalPage;

  // Deposits: show the card number only when paying by card.
  document.querySelectorAll("[data-deposit-form]").forEach(function (form) {
    var cardOnly = form.querySelector("[data-card-only]");
    if (!cardOnly) return;
    function sync() {
      var chosen = form.querySelector('input[name="method"]:checked');
      cardOnly.hidden = !!chosen && chosen.value !== "card";
    }
    form.addEventListener("change", sync);
    sync();
  });

  // Destructive forms ask first (data-confirm holds the question).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // After a failed submit, move focus to the error summary so it is read out first.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) summary.focus();

  // Pages with something pending (a deposit, a report) refresh themselves, unless the
  // user is busy with a form or has scrolled away to read.
  var refresher = document.querySelector("[data-autorefresh]");
  if (refresher) {
    var seconds = Math.max(2, parseInt(refresher.getAttribute("data-autorefresh"), 10) || 5);
    var edited = false;
    document.addEventListener("input", function () { edited = true; });
    setInterval(function () {
      var active = document.activeElement;
      var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
      if (!edited && !typing && !document.hidden) window.location.reload();
    }, seconds * 1000);
  }

  // The main navigation's menu button (phones): collapsed at first, toggled by the button,
  // closed by Escape. Without this script the button stays hidden and the list shows.
  var nav = document.querySelector("[data-menu]");
  var menuButton = nav && nav.querySelector("[data-menu-button]");
  if (nav && menuButton && window.matchMedia) {
    var narrow = window.matchMedia("(max-width: 40rem)");
    var menuSet = function (open) { menuButton.setAttribute("aria-expanded", open ? "true" : "false"); };
    nav.classList.add("mainnav--menu");
    menuSet(!narrow.matches);
    menuButton.addEventListener("click", function () {
      menuSet(menuButton.getAttribute("aria-expanded") !== "true");
    });
    nav.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && narrow.matches && menuButton.getAttribute("aria-expanded") === "true") {
        menuSet(false);
        menuButton.focus();
      }
    });
    var onWidth = function () { menuSet(!narrow.matches); };
    if (narrow.addEventListener) narrow.addEventListener("change", onWidth);
    else if (narrow.addListener) narrow.addListener(onWidth);
  }

  // Tables: every table scrolls sideways inside its own box (.table-wrap, styled by
  // portal.css), so no page is wider than the screen. While columns are hidden to the
  // right, a line above says so and the box becomes a labelled, focusable region (arrow
  // keys scroll it), unless the template made it a region itself (role="region"
  // aria-labelledby tabindex="0"). Tables added later (live updates, other scripts) are
  // wrapped too.
  function tableLabel(wrap) {
    var caption = wrap.querySelector("caption");
    if (caption && caption.textContent.trim()) return caption.textContent.trim();
    var box = wrap.closest("section, .card, article");
    var heading = box && box.querySelector("h1, h2, h3");
    return heading ? heading.textContent.trim() : "Table";
  }

  function tableUpdate(wrap) {
    var more = wrap.scrollWidth - wrap.clientWidth > 1;
    var hint = wrap.previousElementSibling;
    if (hint && hint.hasAttribute("data-table-hint")) hint.hidden = !more;
    wrap.classList.toggle("table-wrap--scrolls", more);
    if (wrap.hasAttribute("data-table-labelled")) return; // the template's own region
    if (more) {
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", tableLabel(wrap) + " (scrolls sideways)");
    } else if (wrap.hasAttribute("data-table-scroll")) {
      wrap.removeAttribute("tabindex");
      wrap.removeAttribute("role");
      wrap.removeAttribute("aria-label");
    }
  }

  var tableResize = window.ResizeObserver
    ? new ResizeObserver(function (entries) {
        entries.forEach(function (entry) {
          var wrap = entry.target.closest(".table-wrap");
          if (wrap) tableUpdate(wrap);
        });
      })
    : null;

  function tableWrap(table) {
    if (table.closest("[data-no-table-wrap]")) return;
    var wrap = table.parentElement;
    if (!wrap.classList.contains("table-wrap")) {
      wrap = page.el("div", { class: "table-wrap table-wrap--auto" });
      table.parentNode.insertBefore(wrap, table);
      wrap.appendChild(table);
    }
    if (wrap.hasAttribute("data-table-scroll")) return;
    wrap.setAttribute("data-table-scroll", "");
    if (wrap.hasAttribute("role")) wrap.setAttribute("data-table-labelled", "");
    // aria-hidden: the region's label says it for screen readers.
    var hint = page.el("p", {
      class: "table-hint", "data-table-hint": "", "aria-hidden": "true", text: "Scroll sideways for more columns \u2192",
    });
    hint.hidden = true;
    wrap.parentNode.insertBefore(hint, wrap);
    if (tableResize) {
      tableResize.observe(wrap);
      tableResize.observe(table);
    } else {
      window.addEventListener("resize", function () { tableUpdate(wrap); });
    }
    tableUpdate(wrap);
  }

  function tablesWrap(root) {
    if (root.tagName === "TABLE") tableWrap(root);
    else if (root.querySelectorAll) root.querySelectorAll("table").forEach(tableWrap);
  }

  var main = document.getElementById("main");
  if (main) {
    tablesWrap(main);
    if (window.MutationObserver) {
      new MutationObserver(function (records) {
        records.forEach(function (record) {
          record.addedNodes.forEach(function (node) {
            if (node.nodeType === 1) tablesWrap(node);
          });
        });
      }).observe(main, { childList: true, subtree: true });
    }
  }
})();
