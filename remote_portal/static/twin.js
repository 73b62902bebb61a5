// The digital twin page: /twin.json rendered as nested lists with textContent only
// (A_WEB_XSS: ids, names and texts in the twin are attacker-controlled data).
"use strict";

function node(value, depth) {
  if (value !== null && typeof value === "object" && depth < 8) {
    const dl = document.createElement("dl");
    dl.className = "tree";
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    for (const [k, v] of entries) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.appendChild(node(v, depth + 1));
      dl.appendChild(dt);
      dl.appendChild(dd);
    }
    return dl;
  }
  const span = document.createElement("span");
  span.className = "mono";
  span.textContent = value === null ? "null" : (typeof value === "object" ? JSON.stringify(value) : String(value));
  return span;
}

async function refresh() {
  try {
    const response = await fetch("/twin.json", { cache: "no-store" });
    if (!response.ok) { return; }
    const twin = await response.json();
    const main = document.getElementById("twin");
    while (main.firstChild) { main.removeChild(main.firstChild); }
    for (const section of Object.keys(twin)) {
      const card = document.createElement("section");
      card.className = "card wide";
      const h = document.createElement("h2");
      h.textContent = section;
      card.appendChild(h);
      card.appendChild(node(twin[section], 0));
      main.appendChild(card);
    }
    document.getElementById("twin-time").textContent = new Date().toISOString();
  } catch (err) {
    document.getElementById("twin-time").textContent = "unavailable";
  }
}

document.addEventListener("DOMContentLoaded", () => { refresh(); setInterval(refresh, 5000); });
