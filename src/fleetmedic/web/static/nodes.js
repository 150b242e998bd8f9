"use strict";
(() => {
  const HEALTH = ["cordoned", "not_ready", "lemon", "failing", "healthy"];
  const COLORS = { cordoned: "#6a3d9a", not_ready: "#d62728", lemon: "#ff7f0e", failing: "#fdd49e", healthy: "#2ca02c" };

  async function main() {
    fm.status("loading…");
    const map = await fm.get("/api/v1/nodes/map");
    document.getElementById("health-counts").replaceChildren(...HEALTH.map((h) =>
      fm.el("span", { class: "count", "data-health": h }, fm.el("i", { class: "swatch health-bg-" + h }), h.replace("_", " ") + " " + map.counts[h])),
      fm.el("span", { class: "muted" }, map.shown < map.total ? " (first " + map.shown + " of " + map.total + " nodes drawn)" : ""));
    const width = Math.max(1, ...map.pools.map((p) => p.nodes.length));
    const z = [], text = [], ids = [];
    for (const pool of map.pools) {
      const row = [], hover = [], names = [];
      for (let i = 0; i < width; i++) {
        const h = pool.health[i];
        row.push(h === undefined ? null : HEALTH.indexOf(h));
        hover.push(h === undefined ? "" : fm.esc(pool.nodes[i]) + "<br>" + h + ", " + pool.failures[i] + " failures");
        names.push(pool.nodes[i] || "");
      }
      z.push(row); text.push(hover); ids.push(names);
    }
    const scale = [];
    HEALTH.forEach((h, i) => { scale.push([i / HEALTH.length, COLORS[h]], [(i + 1) / HEALTH.length, COLORS[h]]); });
    const node = await fm.chart("chart-map", [{
      type: "heatmap", z, text, hoverinfo: "text", y: map.pools.map((p) => fm.esc(p.pool)),
      zmin: -0.5, zmax: HEALTH.length - 0.5, colorscale: scale, showscale: false, xgap: 1, ygap: 3,
    }], { height: 80 + 34 * map.pools.length, margin: { l: 110, r: 10, t: 10, b: 30 }, xaxis: { title: { text: "node (in pool order)" } } });
    node.on("plotly_click", (event) => {
      const point = event.points[0];
      const id = ids[point.pointIndex[0]][point.pointIndex[1]];
      if (id) location.href = "/nodes/" + encodeURIComponent(id);
    });
    fm.status("");
  }

  main().then(fm.done, fm.failed);
})();
