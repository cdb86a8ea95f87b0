/* The lead page's dialogs and folds (templates/lead/_bs.html, _history.html).
   - A dialog the server reopened after an error (class lead-dialog-open) becomes a modal
     again, focused on its first field with an error (else its first field).
   - A link to a dialog (#dlg-…) opened with the page opens that dialog.
   - On a phone the protocol and the answer start folded, so the page stays short;
     "Antworten" unfolds the answer and moves the focus into its text.
   Without JavaScript all of this degrades to sections in the page (lead.css). */
"use strict";
(function () {
  function firstField(dialog) {
    return dialog.querySelector("[aria-invalid=true]") ||
      dialog.querySelector(".modal-body input:not([type=hidden]), .modal-body select, .modal-body textarea");
  }
  function show(dialog) {
    if (!window.bootstrap || !dialog) { return; }
    dialog.classList.remove("lead-dialog-open");
    dialog.addEventListener("shown.bs.modal", function () {
      var field = firstField(dialog);
      if (field) { field.focus(); }
    }, { once: true });
    window.bootstrap.Modal.getOrCreateInstance(dialog).show();
  }
  document.querySelectorAll(".lead-dialog").forEach(function (dialog) {
    dialog.addEventListener("shown.bs.modal", function () {
      if (dialog.querySelector("[aria-invalid=true]")) { return; }
      var field = firstField(dialog);
      if (field) { field.focus(); }
    });
  });
  var reopened = document.querySelector(".lead-dialog.lead-dialog-open");
  if (reopened) {
    show(reopened);
  } else if (/^#dlg-[a-z-]+$/.test(location.hash)) {
    var target = document.querySelector(location.hash + ".lead-dialog");
    if (target) {
      history.replaceState(null, "", location.pathname + location.search);
      show(target);
    }
  }
  if (window.matchMedia("(max-width: 767.98px)").matches) {
    document.querySelectorAll("details[data-fold-on-phone]").forEach(function (d) {
      if (location.hash !== "#" + d.id) { d.removeAttribute("open"); }
    });
  }
  // Every link to the answer (the bar's "Antworten", the customer's address) unfolds it and
  // puts the cursor into the text.
  var answer = document.getElementById("answer");
  var body = document.getElementById("answer-body");
  if (answer && body) {
    document.querySelectorAll('a[href="#answer"]').forEach(function (link) {
      link.addEventListener("click", function () {
        answer.open = true;
        window.setTimeout(function () { body.focus({ preventScroll: true }); }, 0);
      });
    });
  }
})();
