"use strict";
(() => {
  const D = JSON.parse(document.getElementById("data").textContent);
  const audio = document.getElementById("audio");
  const heat = document.getElementById("heat"), over = document.getElementById("overlay");
  const plot = document.getElementById("plot"), now = document.getElementById("now");
  const button = document.getElementById("play"), clock = document.getElementById("clock");
  const C = D.names.length, W = D.starts.length;
  const rowPx = () => parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--row")) || 26;

  // The region each window stands for: edges[i] .. edges[i + 1] (as in the CSV/JSON outputs).
  function windowAt(t) {
    let lo = 0, hi = W - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (D.edges[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  const fmt = (s) => `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  const color = (p) => {  // dark violet -> orange -> pale yellow, like the PNG's magma map
    const stops = [[0, [12, 8, 36]], [0.35, [120, 28, 109]], [0.65, [237, 105, 37]], [1, [252, 253, 191]]];
    for (let i = 1; i < stops.length; i++) {
      if (p <= stops[i][0]) {
        const [a, ca] = stops[i - 1], [b, cb] = stops[i], f = (p - a) / (b - a);
        return ca.map((v, k) => Math.round(v + f * (cb[k] - v)));
      }
    }
    return stops[stops.length - 1][1];
  };

  function draw() {
    const width = Math.max(200, Math.floor(plot.clientWidth)), row = rowPx(), height = row * C;
    for (const cv of [heat, over]) { cv.width = width; cv.height = height; cv.style.height = `${height}px`; }
    plot.style.height = `${height + 20}px`;
    const ctx = heat.getContext("2d");
    const img = ctx.createImageData(width, C);  // one pixel per column and instrument, scaled up: O(width)
    for (let x = 0; x < width; x++) {
      const w = windowAt((x + 0.5) / width * D.duration);
      for (let c = 0; c < C; c++) {
        const [r, g, b] = color(D.probs[w][c]), o = 4 * (c * width + x);
        img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = width; off.height = C;
    off.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, width, C, 0, 0, width, height);
    ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 1.5;
    D.names.forEach((name, c) => {
      for (const [s, e] of D.segments[name]) {
        ctx.strokeRect(s / D.duration * width, c * row + 3, Math.max(1, (e - s) / D.duration * width), row - 6);
      }
    });
    const axis = document.getElementById("axis");
    axis.style.top = `${height + 2}px`;
    axis.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = document.createElement("span");
      tick.textContent = fmt(f * D.duration);
      tick.style.position = "absolute";
      tick.style.left = `calc(${100 * f}% - ${30 * f}px)`;
      return tick;
    }));
    update();
  }

  function update() {
    const t = audio.currentTime || 0, w = windowAt(t), ctx = over.getContext("2d");
    ctx.clearRect(0, 0, over.width, over.height);
    const x = Math.round(t / D.duration * over.width) + 0.5;
    ctx.strokeStyle = "#7df9ff"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, over.height); ctx.stroke();
    now.querySelectorAll("li").forEach((li, c) => {
      li.classList.toggle("on", D.active[w][c] === 1);
      li.lastChild.textContent = D.probs[w][c].toFixed(2);
    });
    clock.textContent = `${fmt(t)} / ${fmt(D.duration)}`;
    button.textContent = audio.paused ? "Play" : "Pause";
    window.musicid.window = w;
  }

  function frame() { update(); if (!audio.paused) requestAnimationFrame(frame); }
  const seek = (t) => { audio.currentTime = Math.min(Math.max(t, 0), D.duration); update(); };
  const toggle = () => {
    if (!audio.paused) { audio.pause(); return; }
    // A pause before playback starts rejects play() with AbortError: expected, not an error.
    audio.play().catch((e) => { if (e.name !== "AbortError") clock.textContent = `cannot play: ${e.message}`; });
  };
  const seekTo = (ev) => {
    const r = over.getBoundingClientRect();
    seek((ev.clientX - r.left) / r.width * D.duration);
  };
  over.addEventListener("pointerdown", (ev) => { over.setPointerCapture(ev.pointerId); seekTo(ev); });
  over.addEventListener("pointermove", (ev) => { if (ev.buttons) seekTo(ev); });
  button.addEventListener("click", toggle);
  document.addEventListener("keydown", (ev) => {
    if (ev.code === "Space") { ev.preventDefault(); toggle(); }
    else if (ev.code === "ArrowLeft") { ev.preventDefault(); seek(audio.currentTime - (ev.shiftKey ? 30 : 5)); }
    else if (ev.code === "ArrowRight") { ev.preventDefault(); seek(audio.currentTime + (ev.shiftKey ? 30 : 5)); }
  });
  for (const ev of ["timeupdate", "seeked", "pause", "ended", "loadedmetadata"]) audio.addEventListener(ev, update);
  audio.addEventListener("play", () => requestAnimationFrame(frame));
  window.addEventListener("resize", draw);

  document.getElementById("labels").replaceChildren(...D.names.map((n) => {
    const div = document.createElement("div"); div.textContent = n; div.className = "instrument"; return div;
  }));
  now.replaceChildren(...D.names.map((n) => {
    const li = document.createElement("li"), a = document.createElement("span"), b = document.createElement("span");
    a.textContent = n; li.append(a, b); li.dataset.name = n; return li;
  }));
  window.musicid = { data: D, windowAt, seek, window: 0, drawn: false };
  const t0 = performance.now();
  draw();
  window.musicid.drawn = true;
  window.musicid.drawMs = performance.now() - t0;
})();
