// Kiosk item page: the picture in OpenSeadragon (deep zoom from our IIIF Image API, pinch and
// drag on touch), its semiotic regions as overlays. Choosing an annotation flies to its region
// and outlines it; the region numbers stay readable (badges above every outline, nudged apart
// when they would overlap); nothing tints the artwork.
(function () {
  "use strict";
  var element = document.getElementById("viewer");
  var configNode = document.getElementById("viewer-config");
  if (!element || !configNode || typeof OpenSeadragon === "undefined") return;
  var config = JSON.parse(configNode.textContent);
  var fallback = document.getElementById("viewer-fallback");
  // The viewer needs its box before it opens: show it, hide the plain picture.
  element.hidden = false;
  if (fallback) fallback.hidden = true;

  var viewer = OpenSeadragon({
    element: element,
    prefixUrl: config.images,
    tileSources: config.info,
    showNavigationControl: false, // our own 44 px, labelled buttons below
    crossOriginPolicy: false,
    visibilityRatio: 0.5,
    constrainDuringPan: true,
    minZoomImageRatio: 0.8,
    maxZoomPixelRatio: 4,
    animationTime: 0.6,
    gestureSettingsTouch: { pinchToZoom: true, flickEnabled: true, clickToZoom: false, dblClickToZoom: true },
    gestureSettingsMouse: { clickToZoom: false, scrollToZoom: true },
  });
  window.kioskViewer = viewer; // for the browser tests

  var boxes = {};
  var badges = [];
  var buttons = Array.prototype.slice.call(document.querySelectorAll(".region-toggle"));

  function imageRect(region) {
    return viewer.viewport.imageToViewportRectangle(region.x, region.y, region.w, region.h);
  }

  viewer.addHandler("open", function () {
    config.regions.forEach(function (region) {
      var box = document.createElement("div");
      box.className = "region-box category-" + region.category;
      box.id = "region-" + region.id;
      box.dataset.testid = "region";
      box.setAttribute("aria-hidden", "true");
      var badge = document.createElement("span");
      badge.className = "region-number";
      badge.textContent = String(region.n);
      box.appendChild(badge);
      // Touching a number chooses its annotation, as its button in the list does.
      new OpenSeadragon.MouseTracker({
        element: badge,
        clickHandler: function () {
          var button = buttons.filter(function (b) { return b.dataset.region === String(region.id); })[0];
          if (button) choose(button);
        },
      });
      viewer.addOverlay({ element: box, location: imageRect(region) });
      boxes[region.id] = box;
      badges.push(badge);
    });
    ["zoom-in", "zoom-out", "zoom-home"].forEach(function (id) {
      document.getElementById(id).hidden = false;
    });
    separateBadges();
  });

  // Badges of overlapping regions would sit on one another: move a later one below (or beside)
  // the ones already placed until none overlap.
  var pending = false;
  function separateBadges() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () {
      pending = false;
      var placed = [];
      badges.forEach(function (badge) {
        badge.style.transform = "";
        var rect = badge.getBoundingClientRect();
        var dx = 0, dy = 0, tries = 0;
        function hits() {
          return placed.some(function (p) {
            return rect.left + dx < p.right && rect.right + dx > p.left &&
              rect.top + dy < p.bottom && rect.bottom + dy > p.top;
          });
        }
        while (hits() && tries < 12) {
          tries += 1;
          dy += rect.height + 2;
          if (tries % 4 === 0) { dy = 0; dx += rect.width + 2; }
        }
        if (dx || dy) badge.style.transform = "translate(" + dx + "px," + dy + "px)";
        placed.push({ left: rect.left + dx, right: rect.right + dx, top: rect.top + dy, bottom: rect.bottom + dy });
      });
    });
  }
  viewer.addHandler("update-viewport", separateBadges);

  function step(factor) {
    viewer.viewport.zoomBy(factor);
    viewer.viewport.applyConstraints();
  }
  document.getElementById("zoom-in").addEventListener("click", function () { step(1.5); });
  document.getElementById("zoom-out").addEventListener("click", function () { step(1 / 1.5); });
  document.getElementById("zoom-home").addEventListener("click", function () {
    viewer.viewport.goHome();
  });

  function choose(button) {
    var id = button.dataset.region;
    var on = button.getAttribute("aria-pressed") !== "true";
    buttons.forEach(function (other) {
      other.setAttribute("aria-pressed", other === button && on ? "true" : "false");
    });
    Object.keys(boxes).forEach(function (key) {
      boxes[key].classList.toggle("is-active", on && key === id);
    });
    if (!on) { viewer.viewport.goHome(); return; }
    var region = config.regions.filter(function (r) { return String(r.id) === id; })[0];
    if (!region) return;
    // Fly to the region with a margin around it, so its outline is inside the frame.
    var rect = imageRect(region);
    var margin = Math.max(rect.width, rect.height) * 0.35;
    viewer.viewport.fitBoundsWithConstraints(
      new OpenSeadragon.Rect(rect.x - margin, rect.y - margin, rect.width + 2 * margin, rect.height + 2 * margin)
    );
    // On a portrait screen the viewer sits above the list: keep it in sight.
    var frame = element.getBoundingClientRect();
    if (frame.bottom < 0 || frame.top > window.innerHeight) element.scrollIntoView({ block: "nearest" });
  }
  buttons.forEach(function (button) {
    button.addEventListener("click", function () { choose(button); });
  });
})();
