"use strict";
(() => {
  // Mark the diagnosis' key words in its evidence lines, by splitting text nodes (no innerHTML).
  function highlight() {
    for (const list of document.querySelectorAll("ol.evidence")) {
      const words = (list.dataset.highlight || "").split("\n").filter(Boolean)
        .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      if (!words.length) continue;
      const pattern = new RegExp("(" + words.join("|") + ")", "gi");
      for (const line of list.querySelectorAll("code.line")) {
        const parts = line.textContent.split(pattern);
        line.replaceChildren(...parts.map((part, i) => (i % 2 ? fm.el("mark", {}, part) : part)));
      }
    }
  }

  async function timeline() {
    const node = document.getElementById("chart-timeline");
    const detail = await fm.get("/api/v1/jobs/" + encodeURIComponent(node.dataset.job));
    const runs = detail.attempts.filter((a) => a.started_at);
    const end = (a) => a.ended_at || detail.job.ended_at || new Date().toISOString();
    const traces = runs.map((a) => ({
      type: "bar", orientation: "h", name: "attempt " + a.attempt + " " + (a.status || ""),
      y: ["attempt " + a.attempt], base: [a.started_at], x: [new Date(end(a)) - new Date(a.started_at)],
      marker: { color: fm.COLORS[a.status] || "#999" },
      hovertemplate: fm.esc("attempt " + a.attempt + ": " + (a.status || "?") +
        (a.diagnosis ? " (" + a.diagnosis.category + ")" : "")) + "<extra></extra>",
    }));
    if (detail.job.submitted_at) {
      traces.unshift({ type: "scatter", mode: "markers", name: "submitted", x: [detail.job.submitted_at],
        y: [runs.length ? "attempt " + runs[0].attempt : "job"], marker: { symbol: "diamond", size: 10, color: "#555" } });
    }
    await fm.chart("chart-timeline", traces, { height: 110 + 32 * runs.length, showlegend: false,
      xaxis: { type: "date" }, yaxis: { autorange: "reversed", type: "category" }, margin: { l: 90, r: 20, t: 10, b: 40 } });
  }

  highlight();
  timeline().then(fm.done, fm.failed);
})();
