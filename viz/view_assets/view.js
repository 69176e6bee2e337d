/* Alignment view of trellis-align (`aligner view`, `viz.show`): hand-written vanilla JavaScript,
 * no dependency, MIT licence (as the package). Each .tv-root element of the page is one view; its
 * data (tiers, audio, waveform envelope and spectrogram tiles) is the JSON in its script.tv-data.
 * Only the visible window is drawn, from the precomputed resolution that fits the zoom. */
(function () {
  "use strict";
  var EPS = 1e-6;         // boundaries closer than this (s) are the same boundary
  var MIN_GAP = 0.001;    // a dragged boundary stays this far (s) from its neighbours
  var PX_PER_LABEL = 8;   // denser tiers are drawn on a canvas, without labels: zoom in to read them
  var CLICK_PX = 3;       // a press that moves less than this is a click
  var TILE_CACHE = 160;   // decoded spectrogram tiles kept
  var active = null;      // the view that gets the keyboard

  function bytes(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function upper(a, x) { var lo = 0, hi = a.length; while (lo < hi) { var m = (lo + hi) >> 1; if (a[m] > x) hi = m; else lo = m + 1; } return lo; }
  function lower(a, x) { var lo = 0, hi = a.length; while (lo < hi) { var m = (lo + hi) >> 1; if (a[m] >= x) hi = m; else lo = m + 1; } return lo; }
  function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, x)); }
  function round6(t) { return Math.round(t * 1e6) / 1e6; }
  function pick(levels, key, spp) {  // the coarsest level still as fine as one pixel
    var best = 0;
    for (var i = 0; i < levels.length; i++) if (levels[i][key] <= spp) best = i;
    return best;
  }
  function prep(canvas) {
    var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth, h = canvas.clientHeight;
    var W = Math.max(1, Math.round(w * dpr)), H = Math.max(1, Math.round(h * dpr));
    if (canvas.width !== W || canvas.height !== H) { canvas.width = W; canvas.height = H; }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx: ctx, w: w, h: h };
  }
  function praatString(s) { return '"' + String(s).replace(/"/g, '""') + '"'; }

  function View(root) {
    var data = JSON.parse(root.querySelector("script.tv-data").textContent);
    var main = root.querySelector(".tv-main");
    var T0 = data.start, T1 = data.end, W = 1;
    var view = { start: T0, span: Math.max(data.initial, 1e-3) };
    var MIN_SPAN = Math.min(0.05, T1 - T0);
    var playhead = T0, stopAt = null, playingEl = null, timer = null, pending = false;
    var drag = null, gesture = null, ovDrag = false, undo = [], redo = [];
    var self = this;

    function q(sel) { return root.querySelector(sel); }
    function canvasOf(sel) { var row = q(sel); return row ? row.querySelector("canvas") : null; }
    var waveCanvas = canvasOf(".tv-wave"), specCanvas = canvasOf(".tv-spec"), diffCanvas = canvasOf(".tv-diff");
    var axisCanvas = canvasOf(".tv-axis"), ovCanvas = canvasOf(".tv-overview");
    var cursor = q(".tv-cursor"), timeLabel = q(".tv-time"), statusEl = q(".tv-status");

    // ---------------------------------------------------------------- tiers
    function makeTier(t, key, isRef) {
      var row = root.querySelector('.tv-tier[data-row="' + key + '"]'), track = row.querySelector(".tv-track");
      var tier = { name: t.name, bounds: t.bounds.slice(), orig: t.bounds.slice(), labels: t.labels, ref: isRef,
                   scores: t.scores, row: row, track: track, more: track.querySelector(".tv-more"),
                   els: new Array(t.labels.length), shown: [], pool: [], gen: 0, dense: null };
      track.querySelectorAll(".tv-iv").forEach(function (el) { tier.els[+el.dataset.index] = el; el._tier = tier; });
      return tier;
    }
    var tiers = data.tiers.map(function (t, k) { return makeTier(t, "m" + k, false); });
    var refs = data.reference ? data.reference.tiers.map(function (t, k) { return makeTier(t, "r" + k, true); }) : [];
    var cmp = null;
    if (data.reference) {
      var named = function (list, name) { for (var i = 0; i < list.length; i++) if (list[i].name === name) return list[i]; return list[0]; };
      cmp = { main: named(tiers, data.reference.tier), ref: named(refs, data.reference.reference_tier),
              pairs: data.reference.pairs, marks: [], label: q(".tv-cmp") };
    }

    // ------------------------------------------------------- audio and images
    var audio = null;
    if (data.audio) {
      audio = q("audio.tv-audio");
      var mime = data.audio.mime;
      if (!audio.canPlayType(mime) && !audio.canPlayType(mime.split(";")[0])) {
        status("This browser cannot play " + data.audio.format + " audio: make the page with --audio-format flac", true);
      } else {
        audio.src = URL.createObjectURL(new Blob([bytes(data.audio.data)], { type: mime.split(";")[0] }));
      }
      data.audio.data = null;
      audio.addEventListener("error", function () {
        status("cannot play the audio (" + ((audio.error && audio.error.message) || "decoding error") + ")", true);
      });
      audio.addEventListener("play", function () { setPlayButton(true); loop(); startTimer(); });
      audio.addEventListener("pause", function () { setPlayButton(false); stopTimer(); playhead = audio.currentTime; schedule(); });
      audio.addEventListener("ended", function () { stopAt = null; unmarkPlaying(); });
    } else {
      q(".tv-play").disabled = true;
      q(".tv-play").title = "No audio in this view (viz.show(alignment, audio) adds it)";
    }
    var env = null, spec = null, tiles = new Map();
    if (data.envelope) {
      env = data.envelope.levels.map(function (l) { return { bin: l.bin, n: l.n, v: new Int8Array(bytes(l.data).buffer) }; });
      data.envelope = null;
    }
    if (data.spectrogram) spec = data.spectrogram.levels;

    function tile(li, k) {
      var key = li + ":" + k, img = tiles.get(key);
      if (!img) {
        var src = spec[li].tiles[k];
        if (!src) return null;
        img = new Image();
        img.onload = schedule;
        img.src = src;
        tiles.set(key, img);
        if (tiles.size > TILE_CACHE) tiles.delete(tiles.keys().next().value);
      }
      return img.complete && img.naturalWidth ? img : null;
    }

    // -------------------------------------------------------------- geometry
    function x(t) { return (t - view.start) / view.span * W; }
    function tooDense(count) { return count > Math.max(50, W / PX_PER_LABEL); }
    function trackRect() { return (tiers[0] ? tiers[0].track : main.querySelector(".tv-track")).getBoundingClientRect(); }
    function timeAt(clientX) { var r = trackRect(); return view.start + (clientX - r.left) / W * view.span; }
    function setStart(s) { view.start = clamp(s, T0, Math.max(T0, T1 - view.span)); schedule(); }
    function zoomAt(factor, at) {
      var span = clamp(view.span * factor, MIN_SPAN, T1 - T0);
      var start = at - (at - view.start) * span / view.span;
      view.span = span;
      setStart(start);
    }
    function focusTime() { var t = current(); return t >= view.start && t <= view.start + view.span ? t : view.start + view.span / 2; }
    function current() { return audio && !audio.paused ? audio.currentTime : playhead; }

    // --------------------------------------------------------------- drawing
    function schedule() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; render(); });
    }
    function render() {
      var r = trackRect();
      W = r.width;
      if (W <= 0) return;
      root.dataset.viewStart = String(round6(view.start));
      root.dataset.viewEnd = String(round6(view.start + view.span));
      root.dataset.secondsPerPixel = String(view.span / W);
      drawWave(); drawSpec();
      tiers.forEach(renderTier); refs.forEach(renderTier);
      drawDiff(); drawAxis(); drawOverview(); placeCursor();
    }
    function boundaryLines(ctx, h) {  // the first tier's boundaries through the waveform and spectrogram
      var t = tiers[0];
      if (!t) return;
      var b = t.bounds, a = upper(b, view.start), z = lower(b, view.start + view.span);
      if (tooDense(z - a)) return;
      ctx.fillStyle = "rgba(31, 79, 191, 0.55)";
      for (var j = a; j < z; j++) ctx.fillRect(Math.round(x(b[j])), 0, 1, h);
    }
    function drawWave() {
      if (!waveCanvas) return;
      var c = prep(waveCanvas), ctx = c.ctx, h = c.h, mid = h / 2, amp = mid - 3, spp = view.span / c.w;
      ctx.fillStyle = "#dde1e7";
      ctx.fillRect(0, Math.round(mid), c.w, 1);
      var lev = env[pick(env, "bin", spp)], v = lev.v, n = lev.n;
      ctx.fillStyle = "#1d2330";
      for (var px = 0; px < c.w; px++) {
        var ta = view.start + px * spp, i0 = Math.floor(ta / lev.bin), i1 = Math.floor((ta + spp) / lev.bin);
        if (i1 <= i0) i1 = i0 + 1;
        if (i1 <= 0 || i0 >= n) continue;
        i0 = Math.max(i0, 0); i1 = Math.min(i1, n);
        var lo = 127, hi = -128;
        for (var i = i0; i < i1; i++) { if (v[2 * i] < lo) lo = v[2 * i]; if (v[2 * i + 1] > hi) hi = v[2 * i + 1]; }
        var y0 = mid - hi / 127 * amp, y1 = mid - lo / 127 * amp;
        ctx.fillRect(px, y0, 1, Math.max(1, y1 - y0));
      }
      boundaryLines(ctx, h);
    }
    function drawLevel(ctx, li, h, spp) {
      var lev = spec[li], c0 = Math.max(0, Math.floor(view.start / lev.col));
      var c1 = Math.min(lev.n, Math.ceil((view.start + view.span) / lev.col));
      for (var k = Math.floor(c0 / lev.tile); k * lev.tile < c1; k++) {
        var img = tile(li, k);
        if (img) ctx.drawImage(img, (k * lev.tile * lev.col - view.start) / spp, 0, img.naturalWidth * lev.col / spp, h);
      }
    }
    function drawSpec() {
      if (!specCanvas) return;
      var c = prep(specCanvas), ctx = c.ctx, spp = view.span / c.w, li = pick(spec, "col", spp);
      ctx.imageSmoothingEnabled = true;
      if (li !== spec.length - 1) drawLevel(ctx, spec.length - 1, c.h, spp);  // while finer tiles decode
      drawLevel(ctx, li, c.h, spp);
      boundaryLines(ctx, c.h);
    }
    function renderTier(t) {
      var b = t.bounds, n = b.length - 1, vs = view.start, ve = view.start + view.span;
      var a = Math.max(0, upper(b, vs) - 1), z = Math.min(n, lower(b, ve)), gen = ++t.gen;
      var tooMany = tooDense(z - a), shown = [], i;
      t.more.style.display = tooMany ? "block" : "none";
      if (tooMany) {
        var labelled = 0;
        for (i = a; i < z; i++) if (t.labels[i]) labelled++;
        t.more.textContent = labelled + " intervals: zoom in to read and move them";
        drawDense(t, a, z);
      } else {
        if (t.dense) t.dense.style.display = "none";
        for (i = a; i < z; i++) {
          var el = t.els[i];
          if (!el) continue;
          var x0 = x(b[i]), x1 = x(b[i + 1]);
          el.style.left = x0 + "px";
          el.style.width = Math.max(1, x1 - x0) + "px";
          el.style.display = "block";
          el._gen = gen;
          shown.push(el);
        }
      }
      for (i = 0; i < t.shown.length; i++) if (t.shown[i]._gen !== gen) t.shown[i].style.display = "none";
      t.shown = shown;
      if (t.ref) return;
      var used = 0;
      if (!tooMany) {
        for (var j = Math.max(1, a + 1); j <= Math.min(n - 1, z - 1); j++) {
          var d = t.pool[used++] || handle(t);
          d.dataset.index = String(j);
          d.dataset.time = String(b[j]);
          d.style.left = x(b[j]) + "px";
          d.style.display = "block";
          d.classList.toggle("tv-moved", Math.abs(b[j] - t.orig[j]) > EPS / 10);
        }
      }
      for (i = used; i < t.pool.length; i++) t.pool[i].style.display = "none";
    }
    function drawDense(t, a, z) {  // many intervals: colours and boundaries on a canvas
      if (!t.dense) {
        t.dense = document.createElement("canvas");
        t.dense.className = "tv-dense";
        t.track.insertBefore(t.dense, t.track.firstChild);
      }
      t.dense.style.display = "block";
      if (!t.colors) {  // one colour per interval, by score (as the labelled elements)
        t.colors = t.labels.map(function (label, i) {
          var s = t.scores ? t.scores[i] : null;
          return t.ref ? "#e6e0f5" : s === null || s === undefined ? "#e9eef8" : "hsl(" + Math.round(clamp(s, 0, 1) * 120) + ", 62%, 84%)";
        });
      }
      var c = prep(t.dense), ctx = c.ctx, b = t.bounds, line = t.ref ? "#6a4fb3" : "#1f4fbf", filled = -1, last = -2;
      for (var i = a; i < z; i++) {
        var x1 = x(b[i + 1]);
        if (!t.labels[i] || Math.floor(x1) <= filled) continue;  // at most one interval per pixel column
        var x0 = Math.max(x(b[i]), filled + 1);
        ctx.fillStyle = t.colors[i];
        ctx.fillRect(x0, 0, Math.max(1, x1 - x0), c.h);
        filled = Math.floor(x1);
        if (x0 - last >= 2) { ctx.fillStyle = line; ctx.fillRect(Math.round(x0), 0, 1, c.h); last = x0; }
      }
    }
    function handle(t) {
      var d = document.createElement("div");
      d.className = "tv-bd";
      d.dataset.boundaryTier = t.name;
      d.title = "drag to move this boundary (Alt: this tier only)";
      d._tier = t;
      t.track.appendChild(d);
      t.pool.push(d);
      return d;
    }
    function drawDiff() {
      if (!diffCanvas || !cmp) return;
      var c = prep(diffCanvas), ctx = c.ctx, h = c.h, A = cmp.main.bounds, R = cmp.ref.bounds;
      var vs = view.start, ve = vs + view.span, p = cmp.pairs, lo = 0, hi = p.length, lastText = -1e9;
      cmp.marks = [];
      while (lo < hi) { var m = (lo + hi) >> 1; if (Math.max(A[p[m][0] + 1], R[p[m][1] + 1]) < vs) lo = m + 1; else hi = m; }
      var hi2 = lo;
      while (hi2 < p.length && Math.min(A[p[hi2][0]], R[p[hi2][1]]) <= ve) hi2++;
      if (tooDense(2 * (hi2 - lo))) return;
      ctx.font = "10px sans-serif";
      ctx.textBaseline = "middle";
      for (var k = lo; k < p.length; k++) {
        if (Math.min(A[p[k][0]], R[p[k][1]]) > ve) break;
        for (var e = 0; e < 2; e++) {
          var a = A[p[k][0] + e], r = R[p[k][1] + e], d = (a - r) * 1000, ad = Math.abs(d);
          var color = ad <= 20 ? "#2e7d32" : ad <= 50 ? "#e08600" : "#c62828", xa = x(a), xr = x(r);
          ctx.strokeStyle = color;
          ctx.lineWidth = 2;
          ctx.beginPath(); ctx.moveTo(xa, 0); ctx.lineTo(xr, h); ctx.stroke();
          var word = cmp.main.labels[p[k][0]];
          cmp.marks.push({ x: (xa + xr) / 2, text: (e ? "end" : "start") + " of \u201c" + word + "\u201d: " + (d >= 0 ? "+" : "") + d.toFixed(1) + " ms" });
          var mid = (xa + xr) / 2;
          if (ad >= 0.5 && mid - lastText > 34) {
            ctx.fillStyle = color;
            ctx.fillText((d >= 0 ? "+" : "\u2212") + Math.round(ad), mid + 3, h / 2);
            lastText = mid;
          }
        }
      }
    }
    function summary() {
      if (!cmp || !cmp.label) return;
      var A = cmp.main.bounds, R = cmp.ref.bounds, d = [];
      cmp.pairs.forEach(function (p) { d.push(Math.abs(A[p[0]] - R[p[1]]) * 1000, Math.abs(A[p[0] + 1] - R[p[1] + 1]) * 1000); });
      if (!d.length) return;
      var sorted = d.slice().sort(function (u, v) { return u - v; }), n = d.length;
      var mae = d.reduce(function (s, v) { return s + v; }, 0) / n;
      var median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      var within = function (tol) { return Math.round(100 * d.filter(function (v) { return v <= tol + 1e-9; }).length / n); };
      var text = cmp.pairs.length + " words: MAE " + mae.toFixed(1) + " ms, median " + median.toFixed(1) + " ms, " +
                 within(20) + "% \u2264 20 ms, " + within(50) + "% \u2264 50 ms";
      var unmatched = cmp.label.textContent.match(/ \(\d+ \/ \d+ unmatched\)$/);
      cmp.label.textContent = text + (unmatched ? unmatched[0] : "");
    }
    function tickLabel(t, step) {
      if (step >= 1 && T1 >= 60) { var m = Math.floor(t / 60), s = Math.round(t - 60 * m); return m + ":" + (s < 10 ? "0" : "") + s; }
      return t.toFixed(step >= 1 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3);
    }
    function drawAxis() {
      var c = prep(axisCanvas), ctx = c.ctx, spp = view.span / c.w;
      var steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];
      var step = 7200;
      for (var i = 0; i < steps.length; i++) if (steps[i] / spp >= 64) { step = steps[i]; break; }
      ctx.fillStyle = "#4a5568";
      ctx.font = "11px sans-serif";
      ctx.textBaseline = "top";
      for (var k = Math.ceil(view.start / step - 1e-9); k * step <= view.start + view.span + 1e-9; k++) {
        var px = Math.round(x(k * step));
        ctx.fillRect(px, 0, 1, 6);
        ctx.fillText(tickLabel(k * step, step), px + 3, 6);
      }
    }
    function drawOverview() {
      var c = prep(ovCanvas), ctx = c.ctx, w = c.w, h = c.h, total = T1 - T0;
      var ox = function (t) { return (t - T0) / total * w; };
      ctx.fillStyle = "#9aa3b2";
      if (env) {
        var lev = env[env.length - 1], v = lev.v;
        for (var px = 0; px < w; px++) {
          var i0 = Math.floor((T0 + px / w * total) / lev.bin), i1 = Math.max(i0 + 1, Math.floor((T0 + (px + 1) / w * total) / lev.bin));
          var hi = 0;
          for (var i = Math.max(0, i0); i < Math.min(lev.n, i1); i++) hi = Math.max(hi, v[2 * i + 1], -v[2 * i]);
          var y = hi / 127 * (h / 2 - 2);
          ctx.fillRect(px, h / 2 - y, 1, Math.max(1, 2 * y));
        }
      } else if (tiers[0]) {
        var t = tiers[0], b = t.bounds;
        for (var j = 0; j < t.labels.length; j++) if (t.labels[j]) ctx.fillRect(ox(b[j]), h / 4, Math.max(1, ox(b[j + 1]) - ox(b[j])), h / 2);
      }
      var x0 = ox(view.start), x1 = ox(view.start + view.span);
      ctx.fillStyle = "rgba(31, 79, 191, 0.16)";
      ctx.fillRect(x0, 0, Math.max(2, x1 - x0), h);
      ctx.strokeStyle = "#1f4fbf";
      ctx.lineWidth = 1;
      ctx.strokeRect(x0 + 0.5, 0.5, Math.max(2, x1 - x0) - 1, h - 1);
      ctx.fillStyle = "#d32f2f";
      ctx.fillRect(ox(current()), 0, 1, h);
    }
    function placeCursor() {
      var t = current(), px = x(t), r = trackRect(), left = r.left - main.getBoundingClientRect().left - main.clientLeft;
      cursor.style.display = px >= 0 && px <= W ? "block" : "none";
      cursor.style.left = (left + px - 1) + "px";
      timeLabel.textContent = t.toFixed(3) + " s";
    }

    // -------------------------------------------------------------- playback
    function setPlayButton(playing) { q(".tv-play").innerHTML = playing ? "&#10074;&#10074; Pause" : "&#9654; Play"; }
    function loop() {
      if (!audio || audio.paused) return;
      var t = audio.currentTime;
      if (!drag && !gesture && stopAt === null && t > view.start + view.span) setStart(t - 0.02 * view.span);
      placeCursor();
      drawOverview();
      requestAnimationFrame(loop);
    }
    function check() {  // stop a span exactly at its end
      if (stopAt !== null && audio.currentTime >= stopAt - 0.002) {
        var end = stopAt;
        stopAt = null;
        audio.pause();
        audio.currentTime = end;
        playhead = end;
        unmarkPlaying();
        schedule();
      }
    }
    function startTimer() { if (!timer) timer = setInterval(check, 5); }
    function stopTimer() { if (timer) { clearInterval(timer); timer = null; } }
    function unmarkPlaying() { if (playingEl) { playingEl.classList.remove("tv-playing"); playingEl = null; } }
    function play(from, to) {
      if (!audio) { playhead = from; schedule(); return; }
      stopAt = to === undefined ? null : to;
      audio.currentTime = from;
      playhead = from;
      var started = audio.play();
      if (started && started.catch) started.catch(function (error) { if (error.name !== "AbortError") status("cannot play: " + error.message, true); });
      if (stopAt !== null) startTimer();
    }
    function playInterval(el) {
      var t = el._tier, i = +el.dataset.index;
      unmarkPlaying();
      if (!audio) { playhead = t.bounds[i]; schedule(); status("no audio in this view"); return; }
      playingEl = el;
      el.classList.add("tv-playing");
      play(t.bounds[i], t.bounds[i + 1]);
    }
    function togglePlay() {
      if (!audio) return;
      if (!audio.paused) { stopAt = null; audio.pause(); unmarkPlaying(); return; }
      var from = playhead >= Math.min(T1, audio.duration || T1) - 0.01 ? view.start : playhead;
      unmarkPlaying();
      play(from);
    }
    function stop() { if (audio && !audio.paused) { stopAt = null; audio.pause(); } unmarkPlaying(); }

    // ----------------------------------------------------------- corrections
    function setBound(t, j, time) {
      t.bounds[j] = time;
      if (t.els[j - 1]) t.els[j - 1].dataset.end = String(time);
      if (t.els[j]) t.els[j].dataset.start = String(time);
    }
    function nearest(b, time) { var k = lower(b, time - EPS); return k < b.length && Math.abs(b[k] - time) <= EPS ? k : -1; }
    function startDrag(e, t, j) {
      var t0 = t.bounds[j], group = [{ tier: t, j: j, old: t0 }];
      if (!e.altKey) {
        tiers.forEach(function (o) {
          if (o === t) return;
          var k = nearest(o.bounds, t0);
          if (k > 0 && k < o.bounds.length - 1) group.push({ tier: o, j: k, old: o.bounds[k] });
        });
      }
      var lo = -Infinity, hi = Infinity;
      group.forEach(function (g) { lo = Math.max(lo, g.tier.bounds[g.j - 1] + MIN_GAP); hi = Math.min(hi, g.tier.bounds[g.j + 1] - MIN_GAP); });
      drag = { group: group, x0: e.clientX, t0: t0, lo: lo, hi: hi, to: t0, el: e.target.closest(".tv-bd") };
      if (drag.el) drag.el.classList.add("tv-drag");
    }
    function moveDrag(e) {
      var dx = e.clientX - drag.x0;
      if (drag.lo > drag.hi) return;  // no room between the neighbours
      var to = dx === 0 ? drag.t0 : round6(clamp(drag.t0 + dx * view.span / W, drag.lo, drag.hi));
      drag.to = to;
      drag.group.forEach(function (g) { setBound(g.tier, g.j, dx === 0 ? g.old : to); });
      schedule();
    }
    function endDrag() {
      var d = drag;
      drag = null;
      if (d.el) d.el.classList.remove("tv-drag");
      if (d.to === d.t0) return;
      undo.push(d.group.map(function (g) { return { tier: g.tier, j: g.j, old: g.old, now: d.to }; }));
      redo = [];
      changed();
    }
    function undoOne() {
      var rec = undo.pop();
      if (!rec) return;
      rec.forEach(function (g) { setBound(g.tier, g.j, g.old); });
      redo.push(rec);
      changed();
    }
    function redoOne() {
      var rec = redo.pop();
      if (!rec) return;
      rec.forEach(function (g) { setBound(g.tier, g.j, g.now); });
      undo.push(rec);
      changed();
    }
    function changed() {
      q(".tv-undo").disabled = !undo.length;
      q(".tv-redo").disabled = !redo.length;
      var moved = 0;
      tiers.forEach(function (t) { for (var j = 0; j < t.bounds.length; j++) if (t.bounds[j] !== t.orig[j]) moved++; });
      root.dataset.moved = String(moved);
      status(moved ? moved + " boundar" + (moved === 1 ? "y" : "ies") + " moved: Download TextGrid to keep " +
             (moved === 1 ? "it" : "them") : "no change");
      summary();
      schedule();
    }
    function textGrid() {
      var xmin = Math.min.apply(null, tiers.map(function (t) { return t.bounds[0]; }));
      var xmax = Math.max.apply(null, tiers.map(function (t) { return t.bounds[t.bounds.length - 1]; }));
      var L = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = " + xmin + " ", "xmax = " + xmax + " ",
               "tiers? <exists> ", "size = " + tiers.length + " ", "item []: "];
      tiers.forEach(function (t, k) {
        var b = t.bounds, n = t.labels.length;
        L.push("    item [" + (k + 1) + "]:", '        class = "IntervalTier" ', "        name = " + praatString(t.name) + " ",
               "        xmin = " + b[0] + " ", "        xmax = " + b[n] + " ", "        intervals: size = " + n + " ");
        for (var i = 0; i < n; i++) {
          L.push("        intervals [" + (i + 1) + "]:", "            xmin = " + b[i] + " ", "            xmax = " + b[i + 1] + " ",
                 "            text = " + praatString(t.labels[i]) + " ");
        }
      });
      return L.join("\n") + "\n";
    }
    function download() {
      var url = URL.createObjectURL(new Blob([textGrid()], { type: "text/plain;charset=utf-8" }));
      var a = document.createElement("a");
      a.href = url;
      a.download = data.stem + ".corrected.TextGrid";
      a.style.display = "none";
      root.appendChild(a);
      a.click();
      root.removeChild(a);
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      status("saved " + a.download + " (your browser's download folder)");
    }
    function status(text, error) { statusEl.textContent = text; statusEl.classList.toggle("tv-error", !!error); }

    // ---------------------------------------------------------------- events
    main.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      var track = e.target.closest(".tv-track");
      active = self;
      if (!track) return;
      e.preventDefault();
      root.focus({ preventScroll: true });
      var bd = e.target.closest(".tv-bd");
      if (bd) { startDrag(e, bd._tier, +bd.dataset.index); return; }
      gesture = { x0: e.clientX, start0: view.start, iv: e.target.closest(".tv-iv"), moved: false };
    });
    window.addEventListener("pointermove", function (e) {
      if (drag) { moveDrag(e); return; }
      if (ovDrag) { setStart(overviewTime(e) - view.span / 2); return; }
      if (!gesture) return;
      var dx = e.clientX - gesture.x0;
      if (Math.abs(dx) >= CLICK_PX) gesture.moved = true;
      if (gesture.moved) setStart(gesture.start0 - dx * view.span / W);
    });
    window.addEventListener("pointerup", function (e) {
      if (drag) { endDrag(); return; }
      ovDrag = false;
      if (!gesture) return;
      var g = gesture;
      gesture = null;
      if (g.moved) return;
      if (g.iv) playInterval(g.iv);
      else { if (audio && !audio.paused) stop(); playhead = clamp(timeAt(e.clientX), T0, T1); schedule(); }
    });
    main.addEventListener("wheel", function (e) {
      if (e.ctrlKey || e.metaKey) {
        e.preventDefault();
        zoomAt(e.deltaY > 0 ? 1.25 : 0.8, timeAt(e.clientX));
      } else if (e.shiftKey || Math.abs(e.deltaX) > Math.abs(e.deltaY)) {
        e.preventDefault();
        setStart(view.start + (e.shiftKey ? (e.deltaY || e.deltaX) : e.deltaX) * view.span / W);
      }
    }, { passive: false });
    function overviewTime(e) {
      var r = ovCanvas.getBoundingClientRect();
      return T0 + (e.clientX - r.left) / r.width * (T1 - T0);
    }
    ovCanvas.addEventListener("pointerdown", function (e) {
      e.preventDefault();
      active = self;
      ovDrag = true;
      setStart(overviewTime(e) - view.span / 2);
    });
    if (diffCanvas) {
      diffCanvas.addEventListener("mousemove", function (e) {
        var r = diffCanvas.getBoundingClientRect(), px = e.clientX - r.left, best = null;
        cmp.marks.forEach(function (m) { if (Math.abs(m.x - px) <= 6 && (!best || Math.abs(m.x - px) < Math.abs(best.x - px))) best = m; });
        diffCanvas.title = best ? best.text : "";
      });
    }
    function button(sel, action) {
      q(sel).addEventListener("click", function (e) { active = self; action(); e.currentTarget.blur(); root.focus({ preventScroll: true }); });
    }
    button(".tv-play", togglePlay);
    button(".tv-zin", function () { zoomAt(0.5, focusTime()); });
    button(".tv-zout", function () { zoomAt(2, focusTime()); });
    button(".tv-all", function () { view.span = T1 - T0; setStart(T0); });
    button(".tv-undo", undoOne);
    button(".tv-redo", redoOne);
    button(".tv-download", download);
    root.addEventListener("focusin", function () { active = self; });

    this.key = function (e) {
      var tag = e.target && e.target.tagName;
      if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (e.target && e.target.isContentEditable)) return;
      var k = e.key, ctrl = e.ctrlKey || e.metaKey, done = true;
      if (ctrl && (k === "z" || k === "Z")) { if (e.shiftKey) redoOne(); else undoOne(); }
      else if (ctrl && (k === "y" || k === "Y")) redoOne();
      else if (ctrl || e.altKey) done = false;
      else if (k === " " || k === "Spacebar") togglePlay();
      else if (k === "ArrowLeft") setStart(view.start - view.span * (e.shiftKey ? 1 : 0.25));
      else if (k === "ArrowRight") setStart(view.start + view.span * (e.shiftKey ? 1 : 0.25));
      else if (k === "ArrowUp" || k === "+" || k === "=") zoomAt(0.5, focusTime());
      else if (k === "ArrowDown" || k === "-" || k === "_") zoomAt(2, focusTime());
      else if (k === "Home") setStart(T0);
      else if (k === "End") setStart(T1);
      else if (k === "a" || k === "A") { view.span = T1 - T0; setStart(T0); }
      else if (k === "Escape") stop();
      else done = false;
      if (done) e.preventDefault();
    };
    // a small API for scripts and tests (the data-* attributes are the stable hooks)
    root.alignmentView = {
      textGrid: textGrid,
      view: function () { return { start: view.start, end: view.start + view.span, secondsPerPixel: view.span / W }; },
      setView: function (start, end) { view.span = clamp(end - start, MIN_SPAN, T1 - T0); setStart(start); render(); },
      bounds: function (name) { for (var i = 0; i < tiers.length; i++) if (tiers[i].name === name) return tiers[i].bounds.slice(); return null; },
      play: play, stop: stop, undo: undoOne, redo: redoOne
    };
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(schedule).observe(main);
    else window.addEventListener("resize", schedule);
    render();
    summary();
    root.dataset.ready = "1";
  }

  document.addEventListener("keydown", function (e) { if (active) active.key(e); });
  document.querySelectorAll(".tv-root").forEach(function (root) {
    if (root.alignmentView) return;
    var v = new View(root);
    if (!active) active = v;
  });
})();
