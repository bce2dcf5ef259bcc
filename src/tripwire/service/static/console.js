// tripwire review console: keyboard shortcuts and the deliberate media reveal. No dependencies.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function typing(event) {
    var el = event.target;
    var tag = el && el.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (el && el.isContentEditable);
  }

  // ---- queue: j/k to move, Enter/o to open --------------------------------------------------------
  function setupQueue() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr"));
    if (!rows.length) return;
    var index = 0;
    function select(i) {
      if (i < 0 || i >= rows.length) return;
      rows[index].classList.remove("selected");
      index = i;
      rows[index].classList.add("selected");
      rows[index].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (row, i) {
      row.addEventListener("click", function (e) {
        if (e.target.tagName !== "A") window.location.href = row.getAttribute("data-href");
      });
    });
    select(0);
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "j" || e.key === "ArrowDown") { select(index + 1); e.preventDefault(); }
      else if (e.key === "k" || e.key === "ArrowUp") { select(index - 1); e.preventDefault(); }
      else if (e.key === "Enter" || e.key === "o") { window.location.href = rows[index].getAttribute("data-href"); e.preventDefault(); }
    });
  }

  // ---- reveal on click only (audited first): the item's media, or one tile of a series --------------------
  function wireReveal(button, frame, itemId, label, hideLabel) {
    button.addEventListener("click", function (e) {
      // Only a real user action (a click, or Enter/Space on the focused button): never a script.
      if (!e.isTrusted) return;
      if (!frame.classList.contains("concealed")) {
        frame.classList.add("concealed");
        button.textContent = label;
        button.setAttribute("aria-pressed", "false");
        return;
      }
      button.disabled = true;
      fetch("/console/items/" + itemId + "/reveal", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() }
      }).then(function (r) {
        button.disabled = false;
        if (r.status === 204) {
          frame.classList.remove("concealed");
          button.textContent = hideLabel;
          button.setAttribute("aria-pressed", "true");
        } else {
          button.textContent = "Could not record the reveal (" + r.status + "): not shown";
        }
      }).catch(function () {
        button.disabled = false;
        button.textContent = "Could not record the reveal: not shown";
      });
    });
  }

  function setupReveal() {
    var button = document.getElementById("reveal");
    var frame = document.getElementById("media-frame");
    var panel = document.getElementById("media-panel");
    if (!button || !frame || !panel) return;
    wireReveal(button, frame, panel.getAttribute("data-item"), "Reveal for this item", "Blur again");
  }

  // series: each tile reveals on its own click, never by a key
  function setupTiles() {
    Array.prototype.forEach.call(document.querySelectorAll("figure.tile"), function (tile) {
      var button = tile.querySelector("button.tile-reveal");
      var frame = tile.querySelector(".media-frame");
      if (button && frame) wireReveal(button, frame, tile.getAttribute("data-item"), "Reveal", "Blur");
    });
  }

  function setupDecisions() {
    var form = document.getElementById("decide-form");
    var input = document.getElementById("decision-input");
    var help = document.getElementById("help");
    var note = document.getElementById("note");
    var keys = {};
    Array.prototype.forEach.call(document.querySelectorAll("button.decide"), function (b) {
      keys[b.getAttribute("data-key")] = b;
    });
    var submitted = false;
    if (form) {
      form.addEventListener("submit", function (e) {
        if (submitted) { e.preventDefault(); return; }
        var by = e.submitter;
        if (by && by.value) input.value = by.value;
        submitted = true;
      });
    }
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && typing(e)) { e.target.blur(); return; }
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (form && keys[e.key]) {
        e.preventDefault();
        if (submitted) return;
        input.value = keys[e.key].value;
        submitted = true;
        form.submit();
      } else if (e.key === "j") {
        var skip = document.getElementById("skip");
        if (skip) window.location.href = skip.getAttribute("href");
      } else if (e.key === "q") {
        window.location.href = "/console/queue";
      } else if (e.key === "/" && note) {
        e.preventDefault();
        note.focus();
      } else if (e.key === "?" && help) {
        help.hidden = !help.hidden;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.classList.contains("queue")) setupQueue();
    if (document.body.classList.contains("item")) { setupReveal(); setupDecisions(); }
    if (document.body.classList.contains("series")) setupTiles();
  });
})();
