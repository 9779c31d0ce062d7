/* The API key pages of the admin (accounts.admin_api_keys).
 * Issue form: when the owner changes, reload the accounts offered from the staff JSON
 * endpoint (only that owner's accounts). One-time display: copy the key to the
 * clipboard, with a visible status; where the clipboard is refused, select the key so
 * it can be copied by hand. Static file: the CSP forbids inline scripts. */
(function () {
  "use strict";

  function accountsReload(select) {
    var form = select.form;
    var list = form.querySelector("[data-accounts-for-owner]");
    var status = form.querySelector("[data-accounts-status]");
    var base = select.getAttribute("data-accounts-url");
    if (!list || !base) return;
    list.innerHTML = "";
    if (!select.value) {
      if (status) status.textContent = "Choose the owner first.";
      return;
    }
    if (status) status.textContent = "Loading the owner's accounts…";
    fetch(base + encodeURIComponent(select.value) + "/", {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body.message || "The accounts could not be loaded.");
          return body;
        });
      })
      .then(function (body) {
        body.accounts.forEach(function (account) {
          var option = document.createElement("option");
          option.value = String(account.id);
          option.textContent = account.label;
          list.appendChild(option);
        });
        if (status) {
          var n = body.accounts.length;
          status.textContent = n
            ? n + (n === 1 ? " account" : " accounts") + " of " + body.owner + " below."
            : body.owner + " has no account yet.";
        }
      })
      .catch(function (error) {
        if (status) status.textContent = error.message;
      });
  }

  function copyKey(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.querySelector("[data-copy-status]");
    if (!target) return;
    var text = target.textContent.trim();

    function selectByHand(message) {
      var range = document.createRange();
      range.selectNodeContents(target);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      if (status) status.textContent = message;
    }

    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          button.textContent = "Copied";
          if (status) status.textContent = "Copied to the clipboard.";
        },
        function () {
          selectByHand("The browser refused the clipboard: the key is selected, press Ctrl+C (⌘C).");
        }
      );
    } else {
      selectByHand("The key is selected: press Ctrl+C (⌘C) to copy it.");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var owner = document.querySelector("[data-owner-select]");
    if (owner) {
      var choose = owner.form.querySelector("[data-choose-owner]");
      if (choose) choose.hidden = true; // the script reloads the accounts itself
      owner.addEventListener("change", function () {
        accountsReload(owner);
      });
    }
    document.querySelectorAll("[data-copy-target]").forEach(function (button) {
      button.addEventListener("click", function () {
        copyKey(button);
      });
    });
  });
})();
