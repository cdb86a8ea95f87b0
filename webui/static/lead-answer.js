/* The answer form's file field: a German button instead of the browser's own words, the
   chosen names and their size, and the size limit checked before anything is uploaded.
   Without JavaScript the browser's own file input stays and the server checks the size. */
"use strict";
document.querySelectorAll(".file-field").forEach(function (field) {
  var input = field.querySelector("input[type=file]");
  var out = field.querySelector("output");
  if (!input || !out) { return; }
  var limit = Number(field.dataset.limit);
  field.classList.add("enhanced");
  input.addEventListener("change", function () {
    var files = Array.prototype.slice.call(input.files || []);
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    var tooLarge = limit > 0 && total > limit;
    input.setCustomValidity(tooLarge ? field.dataset.tooLarge : "");
    field.classList.toggle("has-error", tooLarge);
    if (tooLarge) {
      out.textContent = field.dataset.tooLarge;
    } else if (files.length) {
      out.textContent = files.map(function (f) { return f.name; }).join(", ") +
        " (" + Math.ceil(total / 1024).toLocaleString("de-DE") + " KB)";
    } else {
      out.textContent = field.dataset.none;
    }
  });
});
