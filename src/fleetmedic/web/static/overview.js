"use strict";
(() => {
  const UNITS = {
    ratio: (v) => fm.pct(v), number: (v) => fm.num(v, 0), count: (v) => fm.num(v, 0),
    hours: (v) => (v === null || v === undefined ? "—" : fm.num(v, 2) + " h"),
  };

  function change(card, hasPrevious) {
    if (!hasPrevious) return fm.el("span", { class: "delta" }, "");
    if (card.change === null || card.change === undefined) return fm.el("span", { class: "delta" }, card.previous === null ? "no data in the previous period" : "—");
    const up = card.change > 0;
    const good = card.better === "none" ? "" : (up === (card.better === "up") ? "good" : "bad");
    const arrow = card.change === 0 ? "=" : (up ? "▲" : "▼");
    return fm.el("span", { class: "delta " + good, title: "previous period: " + UNITS[card.unit](card.previous) },
      arrow + " " + fm.pct(Math.abs(card.change)) + " vs previous");
  }

  function cards(data) {
    const list = data.cards.map((c) => fm.el("div", { class: "card", "data-card": c.key },
      fm.el("div", { class: "value" }, UNITS[c.unit](c.value)), fm.el("div", { class: "label" }, c.label), change(c, data.period.previous !== null)));
    list.push(fm.el("div", { class: "card", "data-card": "open_incidents" },
      fm.el("div", { class: "value" }, data.open_incidents === null ? "—" : String(data.open_incidents)),
      fm.el("div", { class: "label" }, "Open incidents"),
      fm.el("span", { class: "delta" }, data.open_incidents === null ? "no tickets stored" : "from ticket triage")));
    document.getElementById("cards").replaceChildren(...list);
  }

  const pct = (xs) => xs.map((v) => (v === null ? null : 100 * v));

  async function charts(data) {
    const w = data.weekly;
    const weeks = w.weeks;
    const outcome = Object.entries(w.hours_by_status).filter(([, v]) => v.some((x) => x > 0))
      .map(([status, values]) => ({ type: "bar", name: status, x: weeks, y: values, marker: { color: fm.COLORS[status] } }));
    await fm.chart("chart-outcomes", outcome, { barmode: "stack", yaxis: { title: { text: "GPU-hours" } } });
    await fm.chart("chart-goodput", [
      { type: "scatter", mode: "lines+markers", name: "goodput", x: weeks, y: pct(w.goodput) },
      { type: "scatter", mode: "lines+markers", name: "ETTR", x: weeks, y: pct(w.ettr) },
    ], { yaxis: { title: { text: "%" }, range: [0, 105] } });
    await fm.chart("chart-success", [
      { type: "scatter", mode: "lines+markers", name: "job success rate", x: weeks, y: pct(w.success_rate) },
      { type: "scatter", mode: "lines+markers", name: "GPU utilization", x: weeks, y: pct(w.utilization) },
      { type: "scatter", mode: "lines+markers", name: "GPU allocation", x: weeks, y: pct(w.allocation_rate) },
    ], { yaxis: { title: { text: "%" }, range: [0, 105] } });
    const sizes = data.queue_wait_by_size;
    await fm.chart("chart-wait", ["p50", "p90", "p99"].map((k) => ({
      type: "bar", name: k, x: sizes.map((s) => s.bucket), y: sizes.map((s) => s[k]),
    })), { barmode: "group", xaxis: { title: { text: "job size (GPUs)" }, type: "category" }, yaxis: { title: { text: "hours" } } });
    await fm.chart("chart-mttr", [
      { type: "bar", name: "failures", x: weeks, y: w.failures, marker: { color: "#f4a582" } },
      { type: "scatter", mode: "lines+markers", name: "MTTR (h)", x: weeks, y: w.mttr_hours,
        marker: { color: "#1f77b4", size: 9 }, yaxis: "y2" },
    ], { margin: { l: 55, r: 55, t: 10, b: 45 }, yaxis: { title: { text: "failures" } },
      yaxis2: { overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", title: { text: "MTTR hours" } } });
  }

  async function main() {
    fm.status("loading…");
    const data = await fm.get("/api/v1/overview?period=" + encodeURIComponent(fm.period()));
    const p = data.period;
    document.getElementById("period-text").textContent =
      p.since.slice(0, 16).replace("T", " ") + " → " + p.until.slice(0, 16).replace("T", " ") + " UTC (" + fm.num(p.days, 1) + " days, " + fm.num(data.jobs, 0) + " jobs)" +
      (p.previous ? "; changes compare with the " + fm.num(p.days, 0) + " days before" : "");
    cards(data);
    await charts(data);
    fm.status("");
  }

  main().then(fm.done, fm.failed);
})();
