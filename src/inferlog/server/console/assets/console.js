// The console's own script: keyboard navigation and charts (uPlot) with their table fallback.
"use strict";
(function () {
  // -- keyboard ------------------------------------------------------------------------------------
  let selected = -1;
  let pendingG = false;
  const rows = () => Array.from(document.querySelectorAll("table[data-rows] tbody tr"));
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    const link = all[selected].querySelector("a");
    if (link) link.focus();
  }
  function typing(target) {
    return target && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName));
  }
  function go(selector) {
    const link = document.querySelector(selector);
    if (link) window.location.assign(link.href);
  }
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (pendingG) {
      pendingG = false;
      const where = { o: "/", r: "/records", m: "/monitor", i: "/integrity" }[event.key];
      if (where) { event.preventDefault(); window.location.assign(where); }
      return;
    }
    switch (event.key) {
      case "j": event.preventDefault(); select(selected + 1); break;
      case "k": event.preventDefault(); select(selected - 1); break;
      case "o":
      case "Enter": {
        const row = rows()[selected];
        if (row && row.dataset.href && event.target.tagName !== "A") { event.preventDefault(); window.location.assign(row.dataset.href); }
        break;
      }
      case "n": go('a[rel="next"]'); break;
      case "p": go('a[rel="prev"]'); break;
      case "/": {
        const first = document.querySelector("form[role=search] input, form[role=search] select");
        if (first) { event.preventDefault(); first.focus(); }
        break;
      }
      case "g": pendingG = true; break;
      case "?": {
        const dialog = document.getElementById("shortcuts");
        if (dialog && !dialog.open) dialog.showModal();
        break;
      }
    }
  });
  document.addEventListener("htmx:afterSwap", () => { selected = -1; });

  // -- charts ------------------------------------------------------------------------------------
  const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d"];
  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("figure[data-chart]").forEach((figure) => {
      if (figure.dataset.drawn) return;
      const source = document.getElementById(figure.dataset.chart);
      if (!source) return;
      const spec = JSON.parse(source.textContent);
      const target = figure.querySelector(".plot");
      const width = Math.max(280, target.clientWidth || 600);
      const opts = {
        width, height: 220, legend: { live: true },
        scales: { x: { time: true } },
        axes: [{}, { label: spec.unit || "", size: 60 }],
        series: [{ label: "time" }, ...spec.series.map((s, i) => ({
          label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2,
          fill: spec.series.length === 1 ? PALETTE[0] + "22" : undefined,
          points: { show: spec.x.length < 40 },
          value: (u, v) => (v == null ? "–" : (+v.toFixed(4)).toString()),
        }))],
      };
      const data = [spec.x, ...spec.series.map((s) => s.values)];
      const plot = new uPlot(opts, data, target);
      figure.dataset.drawn = "1";
      figure.dataset.points = String(spec.x.length);
      new ResizeObserver(() => plot.setSize({ width: Math.max(280, target.clientWidth), height: 220 })).observe(target);
    });
  }
  document.addEventListener("DOMContentLoaded", () => drawCharts(document));
  document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));
})();
