/* The risk-policy page (/ops/risk-policy/) while a worker computes a preview.
 *
 * The page marks #risk-policy-pending with data-status-url (GET: {"ready": bool});
 * this asks it every CHECK_MS and, once the preview is stored, presses "Preview the
 * impact" again, which then shows it. A failed check is tried again; after MAX_CHECKS
 * the note says to press the button.
 */
(function () {
  "use strict";

  var CHECK_MS = 1000;
  var MAX_CHECKS = 300;

  function start() {
    var pending = document.getElementById("risk-policy-pending");
    var button = document.getElementById("risk-policy-preview-button");
    if (!pending || !button) return;
    var url = pending.getAttribute("data-status-url");
    var checks = 0;

    function check() {
      checks += 1;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          return response.ok ? response.json() : { ready: false };
        })
        .catch(function () {
          return { ready: false };
        })
        .then(function (answer) {
          if (answer.ready) {
            button.form.requestSubmit(button);
          } else if (checks < MAX_CHECKS) {
            setTimeout(check, CHECK_MS);
          } else {
            pending.querySelector("p").textContent =
              "The impact is taking long to compute. Press “Preview the impact” to check again.";
          }
        });
    }
    setTimeout(check, CHECK_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
