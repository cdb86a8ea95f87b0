// Live escalation preview on the settings pages: asks preview.json with the form's
// unsaved inputs and fills in the times. Without JavaScript, saving updates it.
(function () {
  "use strict";
  var section = document.querySelector(".timeline-preview");
  var form = document.querySelector("form.previewed");
  if (!section || !form) { return; }
  var url = section.getAttribute("data-preview-url");
  var timer = null;
  function refresh() {
    var params = new URLSearchParams();
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.name !== "csrf_token" && el.type !== "checkbox") {
        params.append(el.name, el.value);
      }
    });
    fetch(url + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var error = document.getElementById("timeline-error");
        var list = document.getElementById("timeline");
        if (data.error) {
          error.textContent = data.error;
          error.hidden = false;
          list.hidden = true;
          return;
        }
        error.hidden = true;
        list.hidden = false;
        list.querySelectorAll("[data-key]").forEach(function (dd) {
          dd.textContent = data[dd.getAttribute("data-key")] || "";
        });
      });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
})();
