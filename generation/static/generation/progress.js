// Live job progress for the curator pages: polls /api/v1/jobs/<id>/ and redraws the
// progress bar, the message and (on training pages) the loss curve. No libraries.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.jobUrl) return;
  var finished = ["succeeded", "failed", "cancelled"];
  if (finished.indexOf(live.dataset.status) !== -1) return;
  var bar = document.getElementById("job-progress");
  var message = document.getElementById("job-message");
  var status = document.getElementById("job-status");
  var svg = document.getElementById("loss-plot");

  function drawLoss(curve) {
    if (!svg || !curve || !curve.length) return;
    var w = svg.viewBox.baseVal.width, h = svg.viewBox.baseVal.height;
    var pad = Number(svg.dataset.pad) || 30;
    var steps = curve.map(function (p) { return p[0]; });
    var losses = curve.map(function (p) { return p[1]; });
    var s0 = Math.min.apply(null, steps), s1 = Math.max.apply(null, steps);
    var lo = Math.min.apply(null, losses), hi = Math.max.apply(null, losses);
    var ss = (s1 - s0) || 1, sv = (hi - lo) || 1;
    var points = curve.map(function (p) {
      var x = pad + (p[0] - s0) / ss * (w - 2 * pad);
      var y = h - pad - (p[1] - lo) / sv * (h - 2 * pad);
      return x.toFixed(1) + "," + y.toFixed(1);
    }).join(" ");
    var line = document.getElementById("loss-line");
    if (!line) return;
    line.setAttribute("points", points);
    document.getElementById("loss-max").textContent = hi.toFixed(4);
    document.getElementById("loss-min").textContent = lo.toFixed(4);
    document.getElementById("loss-steps").textContent = "step " + s1;
  }

  function poll() {
    fetch(live.dataset.jobUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        bar.value = job.progress;
        bar.textContent = Math.round(job.progress * 100) + "%";
        var eta = job.data && job.data.eta_seconds;
        message.textContent = job.message + (eta ? " · about " + Math.ceil(eta) + " s left" : "");
        status.textContent = job.status;
        drawLoss(job.data && job.data.loss_curve);
        // The matplotlib chart (server-side SVG): reload it when the step moved, every ~6 s.
        var chart = document.getElementById("loss-chart");
        var step = job.data && job.data.step;
        if (chart && step && step !== chart.dataset.step && Date.now() - (chart.loaded || 0) > 6000) {
          chart.dataset.step = step;
          chart.loaded = Date.now();
          chart.src = chart.dataset.src + "?step=" + step;
        }
        if (finished.indexOf(job.status) !== -1) {
          window.setTimeout(function () { window.location.reload(); }, 800);
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  poll();
})();
