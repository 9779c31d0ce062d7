/* Prime Portal: small progressive enhancements; every page works without them. */
(function () {
  "use strict";

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
})();
