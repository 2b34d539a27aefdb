/* Pingan Map command-centre screen: MapLibre GL on the service's own vector tiles.
   Everything comes from this origin (CSP: default-src 'self'). */
"use strict";

(function () {
  const LANG = document.body.dataset.lang === "en" ? "en" : "zh";
  const T = {
    zh: {
      legend: "五色预警（村社）", kpis: "本月概况", layers: "图层", warnings: "预警名单",
      red: "红", orange: "橙", yellow: "黄", blue: "蓝", green: "绿",
      redOrange: "红橙村社", lastMonth: "上月", villages: "村社", score: "平安指数", rank: "排名",
      change: "较上月", colour: "颜色", veto: "一票否决", trend: "走势", logout: "退出", role: "角色",
      noWarnings: "（预警清单接口尚未提供）", town: "所属镇街", period: "月份",
    },
    en: {
      legend: "Five colours (villages)", kpis: "This month", layers: "Layers", warnings: "Warnings",
      red: "red", orange: "orange", yellow: "yellow", blue: "blue", green: "green",
      redOrange: "Red + orange villages", lastMonth: "last month", villages: "villages", score: "Safety index",
      rank: "Rank", change: "Change", colour: "Colour", veto: "Veto", trend: "Trend", logout: "Log out",
      role: "role", noWarnings: "(the warning list API is not served yet)", town: "Town", period: "Month",
    },
  }[LANG];
  const CLASSES = [["red", "#e31a1c"], ["orange", "#ff7f00"], ["yellow", "#ffd92f"], ["blue", "#1f78b4"],
                   ["green", "#33a02c"]];
  const OPTIONAL = {  // layer id -> how it is drawn, when the caller may read it
    hotspots: {type: "fill", paint: {"fill-color": ["match", ["get", "bin"], 3, "#b10026", 2, "#e31a1c", 1, "#fc4e2a",
      -1, "#6baed6", -2, "#3182bd", -3, "#08519c", "rgba(0,0,0,0)"], "fill-opacity": 0.55}, on: false},
    hazards: {type: "circle", paint: {"circle-color": "#d9342b", "circle-stroke-color": "#fff", "circle-stroke-width": 0.5,
      "circle-radius": ["case", ["has", "count"], ["min", 14, ["+", 3, ["sqrt", ["get", "count"]]]], 3.5]}, on: false},
    cases: {type: "circle", paint: {"circle-color": "#e08a1e", "circle-stroke-color": "#fff", "circle-stroke-width": 0.5,
      "circle-radius": ["case", ["has", "count"], ["min", 14, ["+", 3, ["sqrt", ["get", "count"]]]], 3.5]}, on: false},
    "key-sites": {type: "circle", paint: {"circle-color": "#7b3fa0", "circle-radius": 3.5}, on: false},
    "persons-by-grid": {type: "fill", paint: {"fill-color": "#c0392b", "fill-opacity": ["case",
      ["==", ["get", "total"], null], 0, ["min", 0.7, ["*", 0.1, ["get", "total"]]]]}, on: false},
    grids: {type: "line", paint: {"line-color": "#8fa3bf", "line-width": 0.5}, on: false},
  };
  const state = {periods: [], index: 0, me: null, titles: {}, timer: null};
  const $ = (id) => document.getElementById(id);
  const tileUrl = (id, query) =>
    `${location.origin}/ogc/collections/${id}/tiles/WebMercatorQuad/{z}/{y}/{x}${query ? "?" + query : ""}`;

  async function json(url) {
    const r = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (r.status === 401) { location.href = "/login?next=/"; throw new Error("login"); }
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    return r.json();
  }

  function months(interval) {
    const [begin, end] = interval.map((s) => new Date(s));
    const out = [];
    for (let y = begin.getUTCFullYear(), m = begin.getUTCMonth();
         y < end.getUTCFullYear() || (y === end.getUTCFullYear() && m <= end.getUTCMonth()); m++) {
      if (m === 12) { m = 0; y++; }
      out.push(`${y}-${String(m + 1).padStart(2, "0")}-01`);
    }
    return out;
  }

  async function start() {
    state.me = await json("/auth/me");
    $("who").textContent = `${state.me.user} · ${T.role} ${state.me.role}`;
    $("logout").textContent = T.logout;
    $("logout").addEventListener("click", async () => {
      await fetch("/auth/logout", {method: "POST", credentials: "same-origin",
        headers: {"X-CSRF-Token": state.me.csrf_token || ""}});
      location.href = "/login";
    });
    const collections = (await json("/ogc/collections")).collections;
    for (const c of collections) state.titles[c.id] = c.title;
    const readable = new Set(collections.map((c) => c.id));
    const index = readable.has("index-villages") ? await json("/ogc/collections/index-villages") : null;
    const interval = index && index.extent && index.extent.temporal && index.extent.temporal.interval[0];
    state.periods = interval && interval[0] ? months(interval) : [];
    state.index = Math.max(0, state.periods.length - 1);
    const slider = $("period");
    slider.max = String(Math.max(0, state.periods.length - 1));
    slider.value = String(state.index);
    slider.addEventListener("input", () => setPeriod(Number(slider.value)));
    $("play").addEventListener("click", togglePlay);

    const towns = readable.has("towns") ? await json("/ogc/collections/towns") : null;
    const box = towns && towns.extent && towns.extent.spatial && towns.extent.spatial.bbox[0];
    maplibregl.setWorkerUrl("/static/vendor/maplibre/maplibre-gl-csp-worker.js");
    const map = new maplibregl.Map({
      container: "map", minZoom: 8, maxZoom: 18, attributionControl: false,
      ...(box ? {bounds: [[box[0], box[1]], [box[2], box[3]]], fitBoundsOptions: {padding: 20}}
              : {center: [120.62, 27.97], zoom: 10.6}),
      style: {version: 8, sources: {}, layers: [{id: "background", type: "background",
        paint: {"background-color": "#0b1d33"}}]},
    });
    window.pinganMap = map;
    map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
    map.addControl(new maplibregl.ScaleControl({unit: "metric"}), "bottom-left");
    map.on("load", () => {
      $("loading").remove();
      if (readable.has("index-villages")) {
        map.addSource("index", {type: "vector", tiles: [tileUrl("index-villages", periodQuery())], minzoom: 8, maxzoom: 16});
        map.addLayer({id: "index-fill", type: "fill", source: "index", "source-layer": "index-villages",
          paint: {"fill-color": ["coalesce", ["get", "colour_hex"], "#555"], "fill-opacity": 0.78}});
      }
      for (const [id, spec] of Object.entries(OPTIONAL)) {
        if (!readable.has(id)) continue;
        map.addSource(id, {type: "vector", tiles: [tileUrl(id, "")], minzoom: 8, maxzoom: 16});
        map.addLayer({id, type: spec.type, source: id, "source-layer": id, paint: spec.paint,
          layout: {visibility: spec.on ? "visible" : "none"}});
        addToggle(map, id);
      }
      map.addSource("base", {type: "vector", tiles: [`${location.origin}/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=towns,villages`],
        minzoom: 6, maxzoom: 16});
      map.addLayer({id: "villages-line", type: "line", source: "base", "source-layer": "villages",
        paint: {"line-color": "#ffffff", "line-opacity": 0.35, "line-width": 0.6}});
      map.addLayer({id: "towns-line", type: "line", source: "base", "source-layer": "towns",
        paint: {"line-color": "#9fc3ff", "line-width": 1.6}});
      map.on("click", "index-fill", (e) => showVillage(e.features[0].properties));
      map.on("mouseenter", "index-fill", () => { map.getCanvas().style.cursor = "pointer"; });
      map.on("mouseleave", "index-fill", () => { map.getCanvas().style.cursor = ""; });
      map.once("idle", () => { document.body.dataset.ready = "1"; });
    });
    $("warnings").innerHTML = `<h2>${T.warnings}</h2><p>${T.noWarnings}</p>`;
    await setPeriod(state.index);
  }

  function periodQuery() {
    return state.periods.length ? `period=${state.periods[state.index]}` : "";
  }

  function addToggle(map, id) {
    const box = document.createElement("label");
    box.className = "layer";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.checked = OPTIONAL[id].on;
    input.dataset.layer = id;
    input.addEventListener("change", () => map.setLayoutProperty(id, "visibility", input.checked ? "visible" : "none"));
    box.append(input, " ", state.titles[id] || id);
    if (!$("layers").querySelector("h2")) $("layers").insertAdjacentHTML("afterbegin", `<h2>${T.layers}</h2>`);
    $("layers").append(box);
  }

  async function classCounts(period) {
    const doc = await json(`/ogc/collections/index-villages/items?datetime=${period}&limit=10000&properties=class`);
    const counts = Object.fromEntries(CLASSES.map(([c]) => [c, 0]));
    for (const f of doc.features) counts[f.properties.class] = (counts[f.properties.class] || 0) + 1;
    return counts;
  }

  async function setPeriod(i) {
    state.index = i;
    const period = state.periods[i];
    $("period-label").textContent = period ? period.slice(0, 7) : "";
    $("period").value = String(i);
    document.body.dataset.period = period || "";
    const map = window.pinganMap;
    if (map && map.getSource("index")) map.getSource("index").setTiles([tileUrl("index-villages", periodQuery())]);
    if (!period) return;
    const now = await classCounts(period);
    $("legend").innerHTML = `<h2>${T.legend}</h2>` + CLASSES.map(([c, hex]) =>
      `<div class="legend-row" data-class="${c}"><span><span class="swatch" style="background:${hex}"></span>${T[c]}</span>` +
      `<strong>${now[c]}</strong></div>`).join("");
    const prev = i > 0 ? await classCounts(state.periods[i - 1]) : null;
    const ro = now.red + now.orange;
    $("kpis").innerHTML = `<h2>${T.kpis}</h2><div class="kpi"><span>${T.redOrange}</span><strong id="kpi-red-orange">${ro}</strong></div>` +
      (prev ? `<div class="kpi"><span>${T.lastMonth}</span><span>${prev.red + prev.orange}</span></div>` : "");
  }

  function togglePlay() {
    if (state.timer) { clearInterval(state.timer); state.timer = null; $("play").textContent = "▶"; return; }
    $("play").textContent = "❚❚";
    state.timer = setInterval(() => setPeriod((state.index + 1) % Math.max(1, state.periods.length)), 1500);
  }

  async function showVillage(p) {
    const box = $("details");
    box.hidden = false;
    box.dataset.code = p.code;
    const history = await json(`/ogc/collections/index-villages/items?code=${encodeURIComponent(p.code)}&limit=100&sortby=period`);
    const scores = history.features.map((f) => f.properties.score);
    const current = history.features.find((f) => f.properties.period === state.periods[state.index]);
    const q = current ? current.properties : p;
    box.innerHTML = `<h2>${q.name || p.name} <small>${p.code}</small></h2>` +
      `<table class="breakdown"><tr><td>${T.period}</td><td>${String(q.period || "").slice(0, 7)}</td></tr>` +
      `<tr><td>${T.score}</td><td id="detail-score">${Number(q.score).toFixed(2)}</td></tr>` +
      `<tr><td>${T.colour}</td><td><span class="swatch" style="background:${q.colour_hex}"></span>${T[q.class] || q.class}</td></tr>` +
      `<tr><td>${T.rank}</td><td>${q.rank}</td></tr><tr><td>${T.change}</td><td>${q.change == null ? "–" : Number(q.change).toFixed(2)}</td></tr>` +
      (q.veto ? `<tr><td>${T.veto}</td><td>✔</td></tr>` : "") + `</table>` +
      `<h2>${T.trend}</h2>${sparkline(scores)}`;
  }

  function sparkline(values) {
    if (values.length < 2) return "";
    const lo = Math.min(...values), hi = Math.max(...values), w = 200, h = 40;
    const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${h - ((v - lo) / (hi - lo || 1)) * h}`).join(" ");
    return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><polyline fill="none" stroke="#9fc3ff" stroke-width="2" points="${pts}"/></svg>`;
  }

  start().catch((err) => { if (err.message !== "login") console.error(err); });
})();
