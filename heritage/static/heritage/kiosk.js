// Kiosk behaviour: idle warning and reset (WCAG 2.2.1), pausable attract slideshow, on-screen
// keyboard. No external assets; works without it (pages are plain links and forms). The item
// page's viewer is kiosk-item.js.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("kiosk-config").textContent);

  // --- attract slideshow: rotates every 6 s; pausable; starts paused for reduced motion ---
  var slides = Array.prototype.slice.call(document.querySelectorAll(".attract-slide"));
  var pause = document.getElementById("attract-pause");
  var current = 0;
  var paused = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  function setPaused(value) {
    paused = value;
    if (!pause) return;
    pause.setAttribute("aria-pressed", value ? "true" : "false");
    pause.textContent = value ? pause.dataset.labelPlay : pause.dataset.labelPause;
  }
  function show(index) {
    slides[current].classList.remove("is-current");
    current = index % slides.length;
    slides[current].classList.add("is-current");
    document.body.dataset.slide = String(current);
  }
  if (slides.length > 1) {
    document.body.dataset.slide = "0";
    setPaused(paused);
    if (pause) pause.addEventListener("click", function () { setPaused(!paused); });
    setInterval(function () { if (!paused) show(current + 1); }, 6000);
  }

  // --- on-screen keyboard of the search page (a kiosk has no physical keyboard) ---
  document.querySelectorAll(".osk").forEach(function (keyboard) {
    var input = document.getElementById(keyboard.dataset.target);
    keyboard.addEventListener("click", function (event) {
      var key = event.target.closest(".osk-key");
      if (!key || !input) return;
      if (key.dataset.action === "backspace") input.value = Array.from(input.value).slice(0, -1).join("");
      else if (key.dataset.action === "clear") input.value = "";
      else input.value += key.dataset.key;
    });
  });

  // --- idle: after config.idle s without input, warn; after config.warning s more, reset ---
  if (config.attract) return;
  var dialog = document.getElementById("idle-dialog");
  var count = document.getElementById("idle-count");
  var continueButton = document.getElementById("idle-continue");
  var lastActivity = Date.now();
  var warningSince = null;
  var previousFocus = null;

  function activity() {
    if (warningSince === null) lastActivity = Date.now();
  }
  ["pointerdown", "keydown", "touchstart", "wheel", "scroll", "input"].forEach(function (name) {
    window.addEventListener(name, activity, { passive: true, capture: true });
  });
  function closeWarning() {
    warningSince = null;
    lastActivity = Date.now();
    dialog.hidden = true;
    if (previousFocus && previousFocus.focus) previousFocus.focus();
  }
  continueButton.addEventListener("click", closeWarning);
  dialog.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeWarning();
    if (event.key === "Tab") { event.preventDefault(); continueButton.focus(); }
  });
  function tick() {
    var now = Date.now();
    if (warningSince === null) {
      if (now - lastActivity >= config.idle * 1000) {
        warningSince = now;
        previousFocus = document.activeElement;
        count.textContent = String(config.warning);
        dialog.hidden = false;
        continueButton.focus();
      }
      return;
    }
    var left = Math.max(0, config.warning - Math.floor((now - warningSince) / 1000));
    count.textContent = String(left);
    if (left <= 0) {
      // Stop ticking first: a second assign while the start page loads aborts the first.
      window.clearInterval(timer);
      window.location.assign("/?reset=1");
    }
  }
  var timer = window.setInterval(tick, 250);
})();
