"use strict";
(() => {
  const { el } = fm;

  function trend(t) {
    if (t.change_pct === null) return t.direction;
    return t.direction + " " + (t.change_pct > 0 ? "+" : "") + t.change_pct.toFixed(0) + "%";
  }

  function where(r) {
    return ["node", "pool", "image"].filter((k) => r[k]).map((k) => k + " " + r[k].name + " (" + fm.pct(r[k].share) + ")").join(", ");
  }

  async function main() {
    fm.status("loading…");
    const data = await fm.get("/api/v1/priorities?limit=100&format=json&period=" + encodeURIComponent(fm.period()));
    fm.table(document.getElementById("priorities"), [
      { label: "#", num: true }, { label: "Cause" }, { label: "Owner team" }, { label: "GPU-h lost", num: true },
      { label: "Failures", num: true }, { label: "Jobs", num: true }, { label: "Users", num: true },
      { label: "Tickets", num: true }, { label: "Trend" }, { label: "Saves GPU-h", num: true },
      { label: "Saves goodput pts", num: true }, { label: "Where" },
    ], data.rows.map((r) => el("tr", {},
      el("td", { class: "num" }, r.rank), el("td", { class: "mono" }, r.signature ? r.category + "/" + r.signature : r.category),
      el("td", {}, r.team), el("td", { class: "num" }, fm.num(r.gpu_hours_lost, 1)), el("td", { class: "num" }, r.failures),
      el("td", { class: "num" }, r.jobs_affected), el("td", { class: "num" }, r.users_affected),
      el("td", { class: "num" }, r.tickets === null ? "—" : r.tickets), el("td", { class: "trend-" + r.trend.direction }, trend(r.trend)),
      el("td", { class: "num" }, fm.num(r.gain_gpu_hours, 1)), el("td", { class: "num" }, fm.num(r.gain_goodput_points, 2)),
      el("td", { class: "small" }, where(r)))));
    fm.status(data.window.since.slice(0, 10) + " → " + data.window.until.slice(0, 10));
  }

  main().then(fm.done, fm.failed);
})();
