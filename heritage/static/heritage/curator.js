// Curator catalogue pages: drag-and-drop image upload with progress, and drawing an
// annotation region on the image. Plain JS, no libraries; the forms work without it.
(function () {
  "use strict";

  // --- upload: one XHR per file so each gets its own progress bar and the API's messages ---
  var form = document.getElementById("upload");
  if (form) {
    var input = document.getElementById("file");
    var list = document.getElementById("upload-status");
    var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var maxBytes = Number(form.dataset.maxBytes) || 0;

    var send = function (file) {
      var li = document.createElement("li");
      var name = document.createElement("span");
      name.textContent = file.name + " ";
      var bar = document.createElement("progress");
      bar.max = 1; bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + file.name);
      var note = document.createElement("span");
      li.append(name, bar, note);
      list.appendChild(li);
      if (maxBytes && file.size > maxBytes) {
        note.textContent = " " + "The file is " + file.size.toLocaleString() + " bytes; the limit is " +
          maxBytes.toLocaleString() + " bytes.";
        li.className = "error";
        return Promise.resolve(false);
      }
      var data = new FormData();
      data.append("file", file);
      if (document.getElementById("is_primary").checked) data.append("is_primary", "on");
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("X-CSRFToken", token);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.onprogress = function (e) { if (e.lengthComputable) bar.value = e.loaded / e.total; };
        xhr.onload = function () {
          var body = {};
          try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
          if (xhr.status === 201) {
            bar.value = 1;
            note.textContent = " added (" + body.size + ")";
            li.className = "ok";
            resolve(true);
          } else {
            note.textContent = " " + ((body.errors || []).join(" ") || ("refused (HTTP " + xhr.status + ")"));
            li.className = "error";
            resolve(false);
          }
        };
        xhr.onerror = function () { note.textContent = " network error"; li.className = "error"; resolve(false); };
        xhr.send(data);
      });
    };
    var sendAll = function (files) {
      list.textContent = "";
      var jobs = Array.prototype.map.call(files, send);
      Promise.all(jobs).then(function (results) {
        // Reload to list the new images unless something was refused (keep its message).
        if (results.length && results.every(Boolean)) window.setTimeout(function () { window.location.reload(); }, 600);
      });
    };
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (input.files.length) sendAll(input.files);
    });
    input.addEventListener("change", function () { if (input.files.length) sendAll(input.files); });
    ["dragenter", "dragover"].forEach(function (t) {
      form.addEventListener(t, function (e) { e.preventDefault(); form.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      form.addEventListener(t, function () { form.classList.remove("dragging"); });
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer && e.dataTransfer.files.length) sendAll(e.dataTransfer.files);
    });
  }

  // --- annotation regions: boxes placed in % of the original, drag to draw a new one ---
  var canvas = document.getElementById("canvas");
  if (canvas) {
    var W = Number(canvas.dataset.width), H = Number(canvas.dataset.height);
    var place = function (el, x, y, w, h) {
      el.style.left = (x / W * 100) + "%";
      el.style.top = (y / H * 100) + "%";
      el.style.width = (w / W * 100) + "%";
      el.style.height = (h / H * 100) + "%";
    };
    canvas.querySelectorAll(".region.saved").forEach(function (el) {
      place(el, +el.dataset.x, +el.dataset.y, +el.dataset.w, +el.dataset.h);
    });
    var drawn = document.getElementById("drawn");
    var fields = ["x", "y", "w", "h"].map(function (k) { return document.getElementById("region_" + k); });
    var start = null;
    var toImage = function (e) {
      var r = canvas.getBoundingClientRect();
      var px = Math.min(Math.max(e.clientX - r.left, 0), r.width);
      var py = Math.min(Math.max(e.clientY - r.top, 0), r.height);
      return [Math.round(px / r.width * W), Math.round(py / r.height * H)];
    };
    var show = function (a, b) {
      var x = Math.min(a[0], b[0]), y = Math.min(a[1], b[1]);
      var w = Math.abs(a[0] - b[0]), h = Math.abs(a[1] - b[1]);
      drawn.hidden = false;
      place(drawn, x, y, w, h);
      [x, y, w, h].forEach(function (v, i) { fields[i].value = v; });
    };
    canvas.addEventListener("pointerdown", function (e) {
      e.preventDefault();
      start = toImage(e);
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointermove", function (e) { if (start) show(start, toImage(e)); });
    canvas.addEventListener("pointerup", function (e) {
      if (!start) return;
      show(start, toImage(e));
      start = null;
      document.getElementById("category").focus();
    });
    // Typed numbers move the box too.
    fields.forEach(function (f) {
      f.addEventListener("input", function () {
        var v = fields.map(function (g) { return Number(g.value); });
        if (v.every(function (n) { return n >= 0; }) && v[2] > 0 && v[3] > 0) { drawn.hidden = false; place(drawn, v[0], v[1], v[2], v[3]); }
      });
    });
  }
})();
