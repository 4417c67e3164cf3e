// Expert form: score a whole image from the keyboard. 1-5 choose the score of the line that
// has the focus (or the first unrated line) and move to the next line; the arrow keys move
// within a line (native radio groups); Enter saves and goes to the next image. The form works
// without this script (plain radios and submit buttons).
(function () {
  "use strict";
  var form = document.getElementById("eval-form");
  if (!form) return;
  var groups = Array.prototype.slice.call(form.querySelectorAll("fieldset.eval-dimension"));
  var submit = document.getElementById("eval-submit");
  var toggle = document.getElementById("anchors-toggle");

  function radios(group) { return Array.prototype.slice.call(group.querySelectorAll("input[type=radio]")); }
  function chosen(group) { return radios(group).filter(function (r) { return r.checked; })[0]; }
  function focusGroup(group) { (chosen(group) || radios(group)[0]).focus(); }

  if (toggle) {
    toggle.addEventListener("click", function () {
      var on = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", on ? "true" : "false");
      form.classList.toggle("show-anchors", on);
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    var target = event.target;
    var typing = target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio");
    if (typing || !groups.length || groups[0].disabled) return;
    if (/^[1-5]$/.test(event.key)) {
      var group = target.closest && target.closest("fieldset.eval-dimension");
      if (!group) group = groups.filter(function (g) { return !chosen(g); })[0] || groups[0];
      var radio = radios(group)[Number(event.key) - 1];
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      event.preventDefault();
      var next = groups[groups.indexOf(group) + 1];
      if (next) focusGroup(next); else if (submit) submit.focus();
      return;
    }
    if (event.key === "Enter" && submit && target.tagName !== "BUTTON" && target.tagName !== "A" &&
        target.tagName !== "SUMMARY") {
      event.preventDefault();
      submit.click();
    }
  });
})();
