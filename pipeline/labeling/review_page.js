"use strict";
// vidtag review page: draws the rows from the inline JSON (pipeline/labeling/page.py), lazily.
(function () {
  const DATA = JSON.parse(document.getElementById("vidtag-data").textContent);
  const CLASSES = DATA.classes, COLOURS = DATA.colours, BG = DATA.background;
  const CODE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const LOW = 0.5; // scores under this are shown as doubtful
  const main = document.getElementById("videos");
  const rows = [];
  let selected = null;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const key in attrs || {}) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "style") node.style.cssText = attrs[key];
      else node.setAttribute(key, attrs[key]);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }
  const colour = (i) => COLOURS[i] || "#888";
  const name = (i) => CLASSES[i] === undefined ? "?" : CLASSES[i];
  function fmt(t) {
    if (t < 60) return t.toFixed(2) + " s";
    const m = Math.floor(t / 60), s = t - 60 * m;
    return m + ":" + (s < 10 ? "0" : "") + s.toFixed(1);
  }
  function decode(text) {
    const out = new Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = CODE.indexOf(text[i]);
    return out;
  }
  function sampleTimes(s) {
    if (s.times) return s.times;
    const out = new Array(s.count);
    for (let i = 0; i < s.count; i++) out[i] = s.start + i * s.step;
    return out;
  }
  function niceStep(duration) {
    const raw = duration / 8, p = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  const pct = (t, d) => (100 * Math.min(Math.max(t / d, 0), 1)).toFixed(3) + "%";

  // --- one row -----------------------------------------------------------------------------
  function makeRow(v, order) {
    const row = el("article", { class: "video-row", "data-status": v.status, tabindex: "-1" });
    row.v = v; row.order = order; row.drawn = false;
    const head = el("div", { class: "head" }, [
      el("span", { class: "name", text: v.name }),
      el("span", { class: "status status-" + v.status, text: v.status }),
    ]);
    if (v.error === undefined) {
      const li = CLASSES.indexOf(v.label);
      head.append(el("span", { class: "chip" }, [
        el("i", { class: "dot", style: "--c:" + colour(li) }), el("span", { text: v.label }),
      ]));
      head.append(el("span", { class: "score", title: "score" }, [
        el("span", { class: "bar" }, [el("i", { style: "width:" + (100 * v.score).toFixed(0)
          + "%;--c:" + (v.score < LOW ? "#cf222e" : "#57606a") })]),
        " " + v.score.toFixed(2),
      ]));
      if (v.metrics) head.append(metricsLine(v.metrics));
      else if (v.truth_error) head.append(el("span", { class: "metrics", text: v.truth_error }));
      const files = el("span", { class: "files" });
      for (const kind of ["json", "csv", "vtt"]) {
        if (v.files[kind]) files.append(el("a", { href: v.files[kind], text: kind }));
      }
      if (v.preview) files.append(el("a", { href: v.src, text: "preview" }));
      if (v.source) files.append(el("a", { href: v.source, text: "video" }));
      head.append(files);
    }
    row.append(head);
    if (v.error !== undefined) row.append(el("p", { class: "error", text: v.error }));
    else row.append(el("div", { class: "body" }));
    head.addEventListener("click", (e) => { if (e.target.tagName !== "A") select(row, true); });
    return row;
  }

  function metricsLine(m) {
    if (m.correct !== undefined) {
      return el("span", { class: "metrics" }, ["truth ", el("b", { text: m.truth_label }),
        m.correct ? " ✓" : " ✗ (predicted " + "differently)"]);
    }
    const part = (label, value) => [label + " ", el("b", { text: value }), "  "];
    const bits = [].concat(
      part("truth: frame acc", (100 * m.frame_accuracy).toFixed(1) + "%"),
      part("edit", (100 * m.edit).toFixed(1)),
      part("F1@10/25/50", [m.f1_10, m.f1_25, m.f1_50].map((x) => (100 * x).toFixed(0)).join("/")));
    return el("span", { class: "metrics" }, bits);
  }

  function draw(row) {
    if (row.drawn || row.v.error !== undefined) return;
    row.drawn = true;
    const v = row.v, body = row.querySelector(".body");
    const left = el("div", { class: "left" });
    row.playerSlot = el("div", { class: "player" });
    left.append(row.playerSlot);
    if (!v.src) {
      if (v.note) left.append(el("p", { class: "note", text: v.note }));
      if (v.thumbs) {
        left.append(el("div", { class: "thumbs" }, [el("img", {
          src: v.thumbs, alt: "thumbnails at the sampled times", loading: "lazy",
          title: "frames at " + v.thumb_times.map((t) => t.toFixed(2)).join(", ") + " s" })]));
      }
    }
    left.append(lanes(row));
    body.append(left, v.top ? topClasses(v) : segmentList(row));
    body.classList.add("drawn");
  }

  function lanes(row) {
    const v = row.v, d = v.duration || 1;
    const box = el("div", { class: "lanes" });
    if (v.truth) box.append(lane("truth", v.truth.map((s) => segDiv("tseg", s[0], s[1], s[2], d,
      name(s[0]) + " (truth): " + fmt(s[1]) + " – " + fmt(s[2])))));
    box.append(lane("pred", v.segments.map((s) => segDiv("seg", s[0], s[1], s[2], d,
      name(s[0]) + ": " + fmt(s[1]) + " – " + fmt(s[2]) + ", frames " + s[3] + "–" + s[4]
      + ", score " + s[5].toFixed(2)))));
    if (v.samples) box.append(confidenceLane(row));
    const axis = el("div", { class: "axis" }), step = niceStep(d);
    const ticks = [];
    for (let t = 0; t <= d + 1e-9; t += step) ticks.push(t);
    if (d - ticks[ticks.length - 1] > step * 0.35) ticks.push(d);
    ticks.forEach((t, i) => axis.append(el("span", {
      class: i === 0 ? "first" : (t >= d - 1e-9 ? "last" : ""), style: "left:" + pct(t, d),
      text: (t < 60 ? +t.toFixed(2) + " s" : fmt(t)) })));
    box.append(axis);
    row.playhead = el("div", { class: "playhead", style: "left:calc(3.4em + 0px)" });
    box.append(row.playhead);
    box.addEventListener("click", (e) => {
      const seg = e.target.closest("[data-start]");
      if (seg) seek(row, parseFloat(seg.dataset.start));
    });
    return box;
  }

  function lane(title, segs) {
    const track = el("div", { class: "track" }, segs);
    return el("div", { class: "lane" }, [el("span", { class: "lane-name", text: title }), track]);
  }

  function segDiv(cls, label, start, end, d, tip) {
    const div = el("div", { class: cls, "data-start": start, title: tip,
      style: "left:" + pct(start, d) + ";width:" + pct(end - start, d) + ";background:"
        + colour(label) });
    div.append(el("span", { text: name(label) }));
    return div;
  }

  function confidenceLane(row) {
    const v = row.v, canvas = el("canvas", { title: "confidence of each sampled frame" });
    const times = sampleTimes(v.samples), scores = decode(v.samples.scores);
    const labels = v.samples.labels ? decode(v.samples.labels) : null;
    const paint = () => {
      const w = canvas.clientWidth, h = canvas.clientHeight, dpr = window.devicePixelRatio || 1;
      if (!w) return;
      canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
      const g = canvas.getContext("2d"), d = v.duration || 1;
      g.scale(dpr, dpr);
      g.fillStyle = "#f6f8fa"; g.fillRect(0, 0, w, h);
      g.strokeStyle = "rgba(207,34,46,.35)"; g.setLineDash([3, 3]);
      g.beginPath(); g.moveTo(0, h * (1 - LOW)); g.lineTo(w, h * (1 - LOW)); g.stroke();
      g.setLineDash([]);
      for (let i = 0; i < times.length; i++) {
        const x0 = w * times[i] / d;
        const x1 = i + 1 < times.length ? w * times[i + 1] / d : w;
        const s = scores[i] / 63, label = labels ? labels[i] : -1;
        g.fillStyle = label === BG || label < 0 ? "#8c959f" : colour(label);
        g.globalAlpha = s < LOW ? 1 : 0.75;
        g.fillRect(x0, h * (1 - s), Math.max(x1 - x0 - 0.5, 1), h * s);
      }
      g.globalAlpha = 1;
    };
    canvas.addEventListener("click", (e) => {
      e.stopPropagation();
      const r = canvas.getBoundingClientRect(), t = (e.clientX - r.left) / r.width * v.duration;
      let best = 0; // the sample shown at t: the last one at or before it
      for (let i = 0; i < times.length; i++) if (times[i] <= t + 1e-9) best = i;
      seek(row, times[best]);
    });
    row.paint = paint;
    requestAnimationFrame(paint);
    return el("div", { class: "lane conf" }, [el("span", { class: "lane-name", text: "conf" }),
      canvas]);
  }

  function segmentList(row) {
    const v = row.v, side = el("aside", { class: "side" });
    if (!v.segments.length) {
      side.append(el("p", { class: "empty", text: "no segment: background throughout" }));
      return side;
    }
    const body = el("tbody");
    row.items = v.segments.map((s) => {
      const tr = el("tr", { class: "item", "data-start": s[1] }, [
        el("td", { class: "lbl" }, [el("i", { class: "dot", style: "--c:" + colour(s[0]) }),
          " " + name(s[0])]),
        el("td", { text: s[1].toFixed(2) + "–" + s[2].toFixed(2) + " s" }),
        el("td", { text: s[3] + "–" + s[4] }),
        el("td", { class: s[5] < LOW ? "low" : "", text: s[5].toFixed(2) }),
      ]);
      tr.addEventListener("click", () => seek(row, s[1]));
      body.append(tr);
      return tr;
    });
    side.append(el("table", {}, [el("thead", {}, [el("tr", {}, ["label", "start–end",
      "frames", "score"].map((t) => el("th", { text: t })))]), body]));
    return side;
  }

  function topClasses(v) {
    const side = el("aside", { class: "side top-classes" }, [el("p", { class: "note",
      text: "top classes" })]);
    for (const [i, s] of v.top) {
      side.append(el("div", {}, [el("span", { class: "name2" }, [
        el("i", { class: "dot", style: "--c:" + colour(i) }), " " + name(i)]),
        el("span", { class: "bar" }, [el("i", { style: "width:" + (100 * s).toFixed(1)
          + "%;--c:" + colour(i) })]),
        el("span", { class: "score", text: s.toFixed(3) })]));
    }
    return side;
  }

  // --- the one player --------------------------------------------------------------------------
  function select(row, scroll) {
    if (selected === row) return row.video;
    if (selected) release(selected);
    selected = row;
    draw(row);
    row.classList.add("selected");
    if (scroll) row.scrollIntoView({ block: "nearest", behavior: "auto" });
    const v = row.v;
    if (v.src) {
      const video = el("video", { controls: "", preload: "auto", src: v.src });
      video.append(el("track", { kind: "captions", srclang: "en", label: "vidtag labels",
        src: trackSrc(v), default: "" }));
      video.addEventListener("loadedmetadata", () => {
        if (video.textTracks[0]) video.textTracks[0].mode = "showing";
      });
      video.addEventListener("error", () => {
        if (row.playerSlot.querySelector(".note")) return;
        row.playerSlot.append(el("p", { class: "note", text: "the browser cannot play "
          + (v.preview ? "this preview" : "this video") + " (" + (video.error ? "media error "
          + video.error.code : "error") + "): label the folder again with label.previews: auto "
          + "or always to write a browser-playable preview" }));
      });
      for (const ev of ["timeupdate", "seeked", "play"]) {
        video.addEventListener(ev, () => follow(row));
      }
      row.playerSlot.append(video);
      row.video = video;
    }
    follow(row);
    return row.video;
  }

  // Browsers load a <track> only from the page's own origin, and every file:// URL is an origin
  // of its own: from disk the track is the same WebVTT text (pipeline/labeling/outputs.py
  // vtt_text), made from the segments as a data: URL; served over HTTP it is the .vtt file.
  function trackSrc(v) {
    if (v.files.vtt && /^https?:$/.test(location.protocol)) return v.files.vtt;
    const stamp = (t) => {
      const ms = Math.max(0, Math.round(t * 1000)), h = Math.floor(ms / 3600000);
      const m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
      const pad = (n, w) => String(n).padStart(w, "0");
      return pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + "." + pad(ms % 1000, 3);
    };
    const text = v.segments.map((s, i) => {
      const start = Math.round(s[1] * 1000), end = Math.max(Math.round(s[2] * 1000), start + 1);
      return (i + 1) + "\n" + stamp(start / 1000) + " --> " + stamp(end / 1000) + "\n"
        + name(s[0]).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
        + " (" + s[5].toFixed(2) + ")\n";
    });
    return "data:text/vtt;charset=utf-8," + encodeURIComponent(["WEBVTT", ""].concat(text)
      .join("\n"));
  }

  function release(row) {
    row.classList.remove("selected");
    if (row.video) {
      row.video.pause();
      row.video.removeAttribute("src");
      row.video.load(); // frees the decoder
      row.video.remove();
      row.video = null;
    }
  }

  function seek(row, t) {
    const video = select(row, false);
    if (video) video.currentTime = t;
    follow(row, t);
  }

  function follow(row, at) {
    const v = row.v, t = at !== undefined ? at : (row.video ? row.video.currentTime : 0);
    if (row.playhead) row.playhead.style.left = "calc(3.4em + (100% - 3.4em) * "
      + Math.min(Math.max(t / (v.duration || 1), 0), 1).toFixed(5) + ")";
    if (row.items) {
      v.segments.forEach((s, i) => row.items[i].classList.toggle("now", s[1] <= t && t < s[2]));
    }
    if (row.video && !row.video.paused && !row.following) {
      row.following = true;
      requestAnimationFrame(() => { row.following = false; follow(row); });
    }
  }

  // --- filters, sorting, keys ----------------------------------------------------------------
  const status = document.getElementById("filter-status");
  const label = document.getElementById("filter-label");
  const search = document.getElementById("filter-name");
  const sort = document.getElementById("sort");
  const shown = document.getElementById("shown");

  function hasLabel(v, i) {
    if (v.error !== undefined) return false;
    if (v.top) return CLASSES[i] === v.label;
    return v.segments.some((s) => s[0] === i) || (v.truth || []).some((s) => s[0] === i);
  }

  function applyFilters() {
    const st = status.value, li = label.value === "" ? -1 : +label.value;
    const text = search.value.trim().toLowerCase();
    let count = 0;
    for (const row of rows) {
      const v = row.v;
      const show = (!st || v.status === st) && (li < 0 || hasLabel(v, li))
        && (!text || v.name.toLowerCase().includes(text));
      row.hidden = !show;
      count += show;
    }
    shown.textContent = "showing " + count + " of " + rows.length;
    document.querySelectorAll(".legend button").forEach((b) =>
      b.classList.toggle("on", b.dataset.label === label.value));
  }

  function applySort() {
    const key = sort.value, sorted = rows.slice();
    const score = (r) => r.v.error !== undefined ? Infinity : r.v.score;
    if (key === "score") sorted.sort((a, b) => score(a) - score(b) || a.order - b.order);
    else if (key === "name") sorted.sort((a, b) => a.v.name.localeCompare(b.v.name));
    else sorted.sort((a, b) => a.order - b.order);
    main.append(...sorted);
  }

  function step(by) {
    const visible = Array.from(main.children).filter((r) => !r.hidden);
    if (!visible.length) return;
    const at = visible.indexOf(selected);
    const next = visible[at < 0 ? (by > 0 ? 0 : visible.length - 1)
      : Math.min(Math.max(at + by, 0), visible.length - 1)];
    select(next, true);
  }

  document.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); step(1); }
    else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); step(-1); }
    else if (e.key === " " && selected && selected.video && tag !== "video") {
      e.preventDefault();
      if (selected.video.paused) selected.video.play(); else selected.video.pause();
    }
  });

  // --- start ---------------------------------------------------------------------------------
  const legend = document.getElementById("legend");
  CLASSES.forEach((c, i) => {
    label.append(el("option", { value: String(i), text: c }));
    const button = el("button", { type: "button", "data-label": String(i),
      title: i === BG ? "background: not drawn as a segment" : "show videos with " + c },
    [el("i", { class: "dot", style: "--c:" + colour(i) }), c]);
    button.addEventListener("click", () => {
      label.value = label.value === String(i) ? "" : String(i);
      applyFilters();
    });
    legend.append(button);
  });
  const fragment = document.createDocumentFragment();
  DATA.videos.forEach((v, i) => { const row = makeRow(v, i); rows.push(row); fragment.append(row); });
  main.append(fragment);
  // Rows are drawn when they come near the viewport: a page of hundreds opens at once.
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) { draw(entry.target); observer.unobserve(entry.target); }
    }
  }, { rootMargin: "600px 0px" });
  rows.forEach((row) => observer.observe(row));
  let resizing = 0;
  window.addEventListener("resize", () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => rows.forEach((r) => r.paint && r.paint()));
  });
  for (const control of [status, label]) control.addEventListener("change", applyFilters);
  search.addEventListener("input", applyFilters);
  sort.addEventListener("change", applySort);
  applyFilters();
  window.vidtagReview = { rows, select, seek }; // for the browser tests and the curious
})();
