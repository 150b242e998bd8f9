"use strict";
(() => {
  const { el } = fm;
  const PAGE = 20;

  async function drill(row, offset) {
    const section = document.getElementById("drill");
    section.hidden = false;
    document.getElementById("drill-title").textContent = "Failed attempts: " + row.cause;
    const query = new URLSearchParams({ category: row.category, period: fm.period(), limit: PAGE, offset });
    if (row.signature) query.set("signature", row.signature);
    const page = await fm.get("/api/v1/failures/jobs?" + query);
    fm.table(document.getElementById("drill-jobs"), [
      { label: "Job" }, { label: "Attempt", num: true }, { label: "User" }, { label: "Team" },
      { label: "GPUs", num: true }, { label: "GPU-h", num: true }, { label: "Ended (UTC)" }, { label: "Summary" },
    ], page.items.map((j) => el("tr", {},
      el("td", {}, fm.jobLink(j.job_id)), el("td", { class: "num" }, j.attempt), el("td", {}, j.user || ""),
      el("td", {}, j.team || ""), el("td", { class: "num" }, fm.num(j.num_gpus, 0)),
      el("td", { class: "num" }, fm.num(j.gpu_hours, 1)), el("td", {}, (j.ended_at || "").slice(0, 19).replace("T", " ")),
      el("td", { class: "small" }, j.summary || ""))));
    const pager = document.getElementById("drill-pager");
    pager.replaceChildren(
      offset > 0 ? el("button", { type: "button", onclick: () => drill(row, Math.max(offset - PAGE, 0)) }, "← previous") : "",
      el("span", {}, (page.total ? offset + 1 : 0) + "–" + (offset + page.items.length) + " of " + page.total),
      page.next_offset !== null ? el("button", { type: "button", onclick: () => drill(row, page.next_offset) }, "next →") : "");
    section.scrollIntoView({ block: "start" });
  }

  function causes(rows) {
    fm.table(document.getElementById("causes"), [
      { label: "#", num: true }, { label: "Cause" }, { label: "Owner team" }, { label: "GPU-h lost", num: true },
      { label: "Cumulative", num: true }, { label: "Failures", num: true }, { label: "Jobs", num: true }, { label: "" },
    ], rows.map((r) => el("tr", {},
      el("td", { class: "num" }, r.rank), el("td", { class: "mono" }, r.cause), el("td", {}, r.team),
      el("td", { class: "num" }, fm.num(r.gpu_hours_lost, 1)), el("td", { class: "num" }, fm.pct(r.cumulative_share)),
      el("td", { class: "num" }, r.failures), el("td", { class: "num" }, r.jobs_affected),
      el("td", {}, el("button", { type: "button", class: "drill", onclick: () => drill(r, 0).catch(fm.failed) }, "jobs →")))));
  }

  function newCauses(rows) {
    fm.table(document.getElementById("new-causes"), [
      { label: "Cause" }, { label: "Owner team" }, { label: "GPU-h lost", num: true }, { label: "Failures", num: true },
    ], rows.map((r) => el("tr", {}, el("td", { class: "mono" }, r.cause), el("td", {}, r.team),
      el("td", { class: "num" }, fm.num(r.gpu_hours_lost, 1)), el("td", { class: "num" }, r.failures))));
  }

  async function charts(data) {
    const rows = data.pareto;
    const labels = rows.map((r) => fm.esc(r.cause.length > 28 ? r.cause.slice(0, 27) + "…" : r.cause));
    await fm.chart("chart-pareto", [
      { type: "bar", name: "GPU-hours lost", x: labels, y: rows.map((r) => r.gpu_hours_lost), marker: { color: "#d62728" },
        customdata: rows.map((r) => [fm.esc(r.cause), fm.esc(r.team)]),
        hovertemplate: "%{customdata[0]}<br>%{y:,.1f} GPU-h lost<br>%{customdata[1]}<extra></extra>" },
      { type: "scatter", mode: "lines+markers", name: "cumulative share", x: labels,
        y: rows.map((r) => 100 * r.cumulative_share), yaxis: "y2", marker: { color: "#1f77b4" } },
    ], { height: 380, margin: { l: 80, r: 45, t: 10, b: 120 }, xaxis: { tickangle: -30 },
      yaxis: { title: { text: "GPU-hours lost" } },
      yaxis2: { overlaying: "y", side: "right", range: [0, 105], tickvals: [0, 20, 40, 60, 80, 100], ticksuffix: "%", showgrid: false } });
    const owners = data.by_owner;
    await fm.chart("chart-owner", [
      { type: "bar", name: "GPU-hours lost", x: owners.map((o) => fm.esc(o.owner)), y: owners.map((o) => o.gpu_hours_lost), marker: { color: "#d62728" }, offsetgroup: 1 },
      { type: "bar", name: "failures", x: owners.map((o) => fm.esc(o.owner)), y: owners.map((o) => o.count), yaxis: "y2", marker: { color: "#f4a582" }, offsetgroup: 2 },
    ], { barmode: "group", margin: { l: 55, r: 55, t: 10, b: 45 }, yaxis: { title: { text: "GPU-hours lost" } },
      yaxis2: { overlaying: "y", side: "right", showgrid: false, title: { text: "failures" } } });
  }

  async function main() {
    fm.status("loading…");
    const data = await fm.get("/api/v1/failures?limit=30&period=" + encodeURIComponent(fm.period()));
    document.getElementById("period-text").textContent = data.period.since + " → " + data.period.until +
      " UTC: " + fm.num(data.total_gpu_hours_lost, 0) + " GPU-hours lost of " + fm.num(data.total_gpu_hours, 0) +
      " (" + data.causes + " causes)";
    causes(data.pareto);
    newCauses(data.new_this_week);
    await charts(data);
    fm.status("");
  }

  main().then(fm.done, fm.failed);
})();
