// Repeating rows on the settings pages (shifts of a weekday): "add" clones the group's last
// row with the next free index and empty values, "remove" drops a row (the last one is only
// emptied). Without JavaScript the page already shows a spare row per group, and the
// buttons stay hidden. Inputs are named <prefix>-<n>-<key>; labels that carry the row
// number use data-label-template ("... {n} ...").
(function () {
  "use strict";

  function renumber(row, index) {
    row.querySelectorAll("[name], [id], [for], [data-label-template]").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/-\d+-/, "-" + index + "-")); }
      });
      var template = el.getAttribute("data-label-template");
      if (template) { el.setAttribute("aria-label", template.replace("{n}", String(index + 1))); }
    });
  }

  function nextIndex(list) {
    var highest = -1;
    list.querySelectorAll("[name]").forEach(function (el) {
      var match = /-(\d+)-/.exec(el.getAttribute("name"));
      if (match) { highest = Math.max(highest, parseInt(match[1], 10)); }
    });
    return highest + 1;
  }

  function changed(el) {
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function setUp(group) {
    var list = group.querySelector("[data-row-list]");
    var add = group.querySelector("[data-add-row]");
    if (!list || !add) { return; }
    add.hidden = false;
    group.querySelectorAll("[data-remove-row]").forEach(function (b) { b.hidden = false; });
    add.addEventListener("click", function () {
      var rows = list.querySelectorAll("[data-row]");
      var row = rows[rows.length - 1].cloneNode(true);
      renumber(row, nextIndex(list));
      row.querySelectorAll("input").forEach(function (input) {
        input.value = "";
        input.classList.remove("is-invalid");
      });
      list.appendChild(row);
      row.querySelector("input").focus();
    });
    list.addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove-row]");
      if (!button) { return; }
      var row = button.closest("[data-row]");
      if (list.querySelectorAll("[data-row]").length > 1) {
        row.remove();
        add.focus();
      } else {
        row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
      changed(list);
    });
  }

  document.querySelectorAll("[data-row-group]").forEach(setUp);
})();
