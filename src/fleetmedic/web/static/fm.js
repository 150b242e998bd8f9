"use strict";
// Shared helpers. Text from the API only ever reaches the page through textContent (el) or,
// for Plotly labels (which understand a little HTML), through esc(): never through innerHTML.
const fm = (() => {
  const COLORS = {
    succeeded: "#2ca02c", failed: "#d62728", timeout: "#ff7f0e", preempted: "#9467bd",
    cancelled: "#7f7f7f", running: "#1f77b4", pending: "#aec7e8",
  };

  async function get(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) {
      let message = "HTTP " + response.status;
      try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ENTITIES[c]);
  const pct = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(1) + "%");
  const num = (v, digits = 1) => (v === null || v === undefined ? "—"
    : Number(v).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const period = () => new URLSearchParams(location.search).get("period") || "30d";

  function status(text) {
    const node = document.getElementById("status");
    if (node) node.textContent = text;
  }

  async function chart(id, traces, layout) {
    const base = {
      height: 300, margin: { l: 55, r: 20, t: 10, b: 45 }, font: { size: 12 },
      legend: { orientation: "h", y: 1.15 }, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
    const node = document.getElementById(id);
    await Plotly.newPlot(node, traces, Object.assign(base, layout || {}),
      { displaylogo: false, responsive: true });
    node.dataset.rendered = "1";
    return node;
  }

  function table(node, headers, rows) {
    const head = el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : null }, h.label)));
    const empty = el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "None."));
    node.replaceChildren(el("thead", {}, head), el("tbody", {}, rows.length ? rows : empty));
  }

  const jobLink = (id) => el("a", { href: "/jobs/" + encodeURIComponent(id) }, id);
  const nodeLink = (id) => el("a", { href: "/nodes/" + encodeURIComponent(id) }, id);

  function done() { document.body.dataset.ready = "1"; }

  function failed(error) {
    status("could not load: " + error.message);
    document.body.dataset.ready = "error";
  }

  return { COLORS, get, el, esc, pct, num, period, status, chart, table, jobLink, nodeLink, done, failed };
})();
