/* The periodic task form of the admin (django_celery_beat): under the crontab field,
 * the chosen schedule read in words ("Translation: At 04:00 AM"), from the
 * readable-crontabs JSON the page carries. django_celery_beat's own template does this
 * with an inline script, which the CSP forbids; templates/admin/djcelery/
 * change_periodictask_form.html loads this file instead. */
(function () {
  "use strict";

  function start() {
    var data = document.getElementById("readable-crontabs");
    var select = document.getElementById("id_crontab");
    var help = document.querySelector(".field-crontab .help");
    if (!data || !select || !help) return;
    var readable = JSON.parse(data.textContent);
    var original = help.textContent.trim();
    var translation = document.querySelector(".field-crontab_translation");
    if (translation) translation.hidden = true;

    function update() {
      var words = readable[select.value];
      help.textContent = original;
      if (!words) return;
      help.appendChild(document.createElement("br"));
      help.appendChild(document.createTextNode("Translation: " + words));
    }

    select.addEventListener("change", update);
    update();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
