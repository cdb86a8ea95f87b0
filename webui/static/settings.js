// Settings pages: the live escalation preview (asks preview.json with the form's unsaved
// inputs) and the holiday region picker (asks regions.json when the country changes).
// Without JavaScript both still work: saving updates the preview, and the region list.
(function () {
  "use strict";

  function timelinePreview() {
    var section = document.querySelector(".timeline-preview");
    var form = document.querySelector("form.previewed");
    if (!section || !form) { return; }
    var url = section.getAttribute("data-preview-url");
    var timer = null;
    var extra = section.querySelectorAll("input[name], select[name]");
    function refresh() {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, name) {
        if (name !== "csrf_token" && typeof value === "string") { params.append(name, value); }
      });
      Array.prototype.forEach.call(extra, function (el) {
        if (el.name) { params.append(el.name, el.value); }
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
            dd.textContent = data[dd.getAttribute("data-key")] || "–";
          });
        });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    Array.prototype.forEach.call(extra, function (el) {
      el.addEventListener("input", later);
      el.addEventListener("change", later);
    });
  }

  function regionPicker() {
    var form = document.querySelector("form.holiday-picker");
    if (!form) { return; }
    var country = form.querySelector("select[name=country]");
    var region = form.querySelector("select[name=subdivision]");
    var url = form.getAttribute("data-regions-url");
    country.addEventListener("change", function () {
      fetch(url + "?country=" + encodeURIComponent(country.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          var keep = region.options[0];
          region.innerHTML = "";
          region.appendChild(keep);
          data.regions.forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.code;
            option.textContent = item.name;
            region.appendChild(option);
          });
          region.value = "";
          kinds(data.categories);
        });
    });

    // The holiday categories of the new country as a checklist (public holidays ticked).
    function kinds(categories) {
      var list = form.querySelector("[data-categories]");
      if (!list) { return; }
      list.innerHTML = "";
      categories.forEach(function (item, i) {
        var box = document.createElement("div");
        box.className = "form-check";
        var input = document.createElement("input");
        input.type = "checkbox";
        input.className = "form-check-input";
        input.name = "categories";
        input.value = item.code;
        input.id = "category-" + i;
        input.checked = item.code === "public";
        var label = document.createElement("label");
        label.className = "form-check-label";
        label.htmlFor = input.id;
        label.textContent = item.name;
        box.appendChild(input);
        box.appendChild(label);
        list.appendChild(box);
      });
    }
  }

  timelinePreview();
  regionPicker();
})();
