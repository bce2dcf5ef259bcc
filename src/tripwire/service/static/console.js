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

  // ---- undo: the decision just recorded, on the u key or the button ----------------------------------------
  function setupUndo() {
    var form = document.getElementById("undo-form");
    if (!form || !document.getElementById("undo")) return;
    document.addEventListener("keydown", function (e) {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "u") { e.preventDefault(); form.submit(); }
    });
  }

  // ---- case grid: move, select, categorise several tiles; nothing is recorded until "Apply" -----------------
  function setupGrid() {
    var tiles = Array.prototype.slice.call(document.querySelectorAll("#grid li.tile"));
    var apply = document.getElementById("apply");
    var count = document.getElementById("selected-count");
    var vics = document.getElementById("vics");
    var decision = document.getElementById("bulk-decision");
    tiles.forEach(function (tile) {  // a thumbnail that cannot be made (file gone or changed): say so
      var img = tile.querySelector(".thumb img");
      if (img) img.addEventListener("error", function () {
        var span = document.createElement("span");
        span.className = "noimg";
        span.textContent = "file not available";
        img.replaceWith(span);
      });
    });
    if (!tiles.length) return;
    function boxes() { return tiles.map(function (t) { return t.querySelector("input.pick-box"); }); }
    function refresh() {
      var n = boxes().filter(function (b) { return b && b.checked; }).length;
      tiles.forEach(function (t) { var b = t.querySelector("input.pick-box"); t.classList.toggle("picked", !!(b && b.checked)); });
      if (count) count.textContent = n + " selected";
      if (apply) apply.disabled = n === 0 || !((vics && vics.value) || (decision && decision.value));
    }
    boxes().forEach(function (b) { if (b) b.addEventListener("change", refresh); });
    if (vics) vics.addEventListener("change", function () { if (vics.value && decision) decision.value = ""; refresh(); });
    if (decision) decision.addEventListener("change", function () { if (decision.value && vics) vics.value = ""; refresh(); });
    var all = document.getElementById("select-all");
    if (all) all.addEventListener("click", function () {
      var every = boxes().every(function (b) { return !b || b.checked; });
      boxes().forEach(function (b) { if (b) b.checked = !every; });
      refresh();
    });
    var index = 0;
    function columns() {
      var top = tiles[0].offsetTop, n = 0;
      while (n < tiles.length && tiles[n].offsetTop === top) n++;
      return Math.max(1, n);
    }
    function focus(i) {
      if (i < 0 || i >= tiles.length) return;
      tiles[index].classList.remove("selected");
      index = i;
      tiles[index].classList.add("selected");
      tiles[index].focus({ preventScroll: true });
      tiles[index].scrollIntoView({ block: "nearest" });
    }
    tiles.forEach(function (t, i) { t.addEventListener("focusin", function () { if (i !== index) focus(i); }); });
    focus(0);
    document.addEventListener("keydown", function (e) {
      var tag = e.target && e.target.tagName;
      if (tag === "BUTTON" || tag === "A") return;  // Enter/Space on a button or link does what it says
      if (typing(e) && e.target.type !== "checkbox") return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      var k = e.key, box = tiles[index].querySelector("input.pick-box");
      if (k === " " && e.target.type === "checkbox") return;  // the box toggles itself (and says so: change)
      if (k === "ArrowRight" || k === "l") focus(index + 1);
      else if (k === "ArrowLeft" || k === "h") focus(index - 1);
      else if (k === "ArrowDown" || k === "j") focus(Math.min(tiles.length - 1, index + columns()));
      else if (k === "ArrowUp" || k === "k") focus(Math.max(0, index - columns()));
      else if ((k === "x" || k === " ") && box) { box.checked = !box.checked; refresh(); }
      else if (k === "A" && all) all.click();
      else if (/^[0-4]$/.test(k) && vics) { vics.value = k; if (decision) decision.value = ""; refresh(); }
      else if (k === "Enter" || k === "o") window.location.href = tiles[index].getAttribute("data-href");
      else return;
      e.preventDefault();
    });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupUndo();
    if (document.body.classList.contains("case")) setupGrid();
    if (document.body.classList.contains("queue")) setupQueue();
    if (document.body.classList.contains("item")) { setupReveal(); setupDecisions(); }
    if (document.body.classList.contains("series")) setupTiles();
  });
})();
