/* Pingan Map command-centre screen: MapLibre GL on the service's own vector tiles.
   Everything comes from this origin (CSP: default-src 'self'), except an optional basemap the
   deployment configures (PINGAN_BASEMAP_URL; the CSP then allows its origin). */
"use strict";

(function () {
  const LANG = document.body.dataset.lang === "en" ? "en" : "zh";
  const T = {
    zh: {
      legend: "五色预警（村社）", kpis: "本月概况", layers: "图层", warnings: "预警名单",
      red: "红", orange: "橙", yellow: "黄", blue: "蓝", green: "绿",
      redOrange: "红橙村社", lastMonth: "上月", villages: "村社", towns: "镇街", score: "平安指数", rank: "排名",
      change: "较上月", colour: "颜色", veto: "一票否决", trend: "走势", logout: "退出", role: "角色",
      town: "所属镇街", period: "月份", noWarnings: "无未结预警", since: "起始", deadline: "期限",
      overdue: "逾期", owner: "责任单位", hazardsFound: "隐患发现", hazardsRectified: "已整改", rate: "整改率",
      overdueItems: "逾期事项", overdueHazards: "逾期隐患", overdueLadder: "逾期督办", disputes: "纠纷化解",
      grassroots: "基层化解率", persons: "五失人员", personsNote: "小数抑制", breakdown: "指标扣分",
      openWarnings: "未结预警", history: "处置流程", state: "状态", deadlineShort: "整改期限",
      notForRole: "本角色不可见", density: "核密度", aggregated: "件（聚合）", unavailable: "暂无",
      steps: {1: "预警", 2: "抄告", 3: "督办", 4: "挂牌"}, notSeen: "无权查看或不存在",
      refreshed: "已更新", basemap: "底图", of: "共", items: "项",
    },
    en: {
      legend: "Five colours (villages)", kpis: "This month", layers: "Layers", warnings: "Warnings",
      red: "red", orange: "orange", yellow: "yellow", blue: "blue", green: "green",
      redOrange: "Red + orange villages", lastMonth: "last month", villages: "villages", towns: "towns", score: "Safety index",
      rank: "Rank", change: "Change", colour: "Colour", veto: "Veto", trend: "Trend", logout: "Log out",
      role: "role", town: "Town", period: "Month", noWarnings: "No open warnings", since: "since",
      deadline: "due", overdue: "overdue", owner: "Owner", hazardsFound: "Hazards found",
      hazardsRectified: "rectified", rate: "Rectification rate", overdueItems: "Overdue items",
      overdueHazards: "overdue hazards", overdueLadder: "overdue ladder items", disputes: "Disputes resolved",
      grassroots: "at grassroots", persons: "Five-loss persons", personsNote: "small counts withheld",
      breakdown: "Points deducted per indicator", openWarnings: "Open warnings", history: "State history",
      state: "State", deadlineShort: "Deadline", notForRole: "not for this role", density: "Kernel density",
      aggregated: "(aggregated)", unavailable: "none",
      steps: {1: "warning", 2: "notice", 3: "supervision", 4: "listing"}, notSeen: "not visible or not found",
      refreshed: "updated", basemap: "Basemap", of: "of", items: "items",
    },
  }[LANG];
  const STATES = {  // workflow states: colour and name (docs/data-model.md)
    hazards: [["found", "#e31a1c", "发现", "found"], ["assigned", "#ff7f00", "交办", "assigned"],
              ["handling", "#ffd92f", "处置", "handling"], ["feedback", "#a6d854", "反馈", "feedback"],
              ["verified", "#66c2a5", "核查", "verified"], ["closed", "#8da0cb", "销号", "closed"]],
    cases: [["accepted", "#e31a1c", "受理", "accepted"], ["mediating", "#ff7f00", "调解", "mediating"],
            ["resolved", "#66c2a5", "化解", "resolved"], ["transferred", "#e78ac3", "移交", "transferred"],
            ["closed", "#8da0cb", "结案", "closed"]],
  };
  const stateName = (kind, s) => { const r = STATES[kind].find((x) => x[0] === s); return r ? r[LANG === "en" ? 3 : 2] : s; };
  const INDICATORS = {
    crime: ["刑事治安案件", "Criminal and public-order cases"], crime_trend: ["刑事治安同比", "Cases against last year"],
    disputes_escalated: ["纠纷未在基层化解", "Disputes not resolved at grassroots"],
    hazards_overdue: ["隐患逾期", "Hazards overdue"], hazards_on_time: ["隐患按期整改", "Hazards rectified on time"],
    persons_red: ["五失红色人员", "Five-loss persons, red"], visits_overdue: ["走访逾期", "Visits overdue"],
    petitions: ["信访", "Petitions"], accidents: ["安全事故", "Safety accidents"],
    survey_awareness: ["知晓率", "Awareness"], survey_participation: ["参与率", "Participation"],
    survey_satisfaction: ["满意度", "Satisfaction"],
  };
  const CLASSES = [["red", "#e31a1c"], ["orange", "#ff7f00"], ["yellow", "#ffd92f"], ["blue", "#1f78b4"],
                   ["green", "#33a02c"]];
  // a record: its state's colour; an aggregate (low zoom: count_<state> per cell): the colour of
  // the earliest state it holds, so open work shows over what is closed
  const byState = (kind) => ["case", ["has", "state"],
    ["match", ["get", "state"], ...STATES[kind].flatMap(([s, c]) => [s, c]), "#999"],
    ["case", ...STATES[kind].slice(0, -1).flatMap(([s, c]) => [[">", ["coalesce", ["get", `count_${s}`], 0], 0], c]),
     STATES[kind].at(-1)[1]]];
  const countRadius = ["case", ["has", "count"], ["min", 16, ["+", 3, ["sqrt", ["get", "count"]]]], 4];
  // How known layers are drawn; any other collection with vector tiles gets a generic style by
  // geometry type, so layers added to the registry appear without edits here.
  const KNOWN = {
    hotspots: [{type: "fill", paint: {"fill-color": ["match", ["get", "bin"], 3, "#b10026", 2, "#e31a1c", 1, "#fc4e2a",
      -1, "#6baed6", -2, "#3182bd", -3, "#08519c", "rgba(0,0,0,0)"], "fill-opacity": 0.55}}],
    // open states drawn over closed ones (aggregated: one circle per state and cell)
    hazards: [{type: "circle", layout: {"circle-sort-key": ["case", ["has", "state"],
      ["match", ["get", "state"], "closed", 0, "verified", 1, 2], ["-", ["get", "count"], ["coalesce", ["get", "count_closed"], 0]]]},
      paint: {"circle-color": byState("hazards"), "circle-stroke-color": "#fff",
      "circle-stroke-width": 0.6, "circle-radius": countRadius}}],
    cases: [{type: "circle", layout: {"circle-sort-key": ["case", ["has", "state"],
      ["match", ["get", "state"], "closed", 0, "resolved", 1, 2], ["-", ["get", "count"], ["coalesce", ["get", "count_closed"], 0]]]},
      paint: {"circle-color": byState("cases"), "circle-stroke-color": "#222",
      "circle-stroke-width": 0.6, "circle-radius": countRadius}}],
    "key-sites": [{type: "circle", paint: {"circle-color": "#b07cd8", "circle-radius": 3.5,
      "circle-stroke-color": "#fff", "circle-stroke-width": 0.5}}],
    "persons-by-grid": [{type: "fill", paint: {"fill-color": "#c0392b", "fill-opacity": ["case",
      ["==", ["get", "total"], null], 0, ["min", 0.7, ["*", 0.1, ["get", "total"]]]]}}],
    "persons-by-village": [{type: "fill", paint: {"fill-color": "#c0392b", "fill-opacity": ["case",
      ["==", ["get", "total"], null], 0, ["min", 0.7, ["*", 0.02, ["get", "total"]]]]}}],
    "persons-by-town": [{type: "fill", paint: {"fill-color": "#c0392b", "fill-opacity": ["case",
      ["==", ["get", "total"], null], 0, ["min", 0.7, ["*", 0.005, ["get", "total"]]]]}}],
    persons: [{type: "circle", paint: {"circle-color": ["match", ["get", "grade"], "red", "#e31a1c", "yellow",
      "#ffd92f", "green", "#33a02c", "#999"], "circle-radius": countRadius}}],
    grids: [{type: "line", paint: {"line-color": "#8fa3bf", "line-width": 0.5}}],
    "index-towns": [{type: "fill", paint: {"fill-color": ["coalesce", ["get", "colour_hex"], "#555"], "fill-opacity": 0.7}}],
  };
  const GENERIC = [
    {suffix: "fill", type: "fill", filter: ["==", ["geometry-type"], "Polygon"],
     paint: {"fill-color": "#4aa3df", "fill-opacity": 0.35, "fill-outline-color": "#9fd3ff"}},
    {suffix: "line", type: "line", filter: ["==", ["geometry-type"], "LineString"],
     paint: {"line-color": "#00e5ff", "line-width": 2.5}},
    {suffix: "point", type: "circle", filter: ["==", ["geometry-type"], "Point"],
     paint: {"circle-color": "#00e5ff", "circle-radius": 4, "circle-stroke-color": "#fff", "circle-stroke-width": 0.5}},
  ];
  const SKIP = new Set(["towns", "villages", "index-villages"]);  // drawn as the base and the choropleth
  const DEPENDS = {base: ["towns", "villages"], index: ["index-villages", "villages"], "village-points": ["index-villages", "villages"],
                   "persons-by-grid": ["persons"], "persons-by-village": ["persons"],
                   "persons-by-town": ["persons"]};
  const boot = JSON.parse(document.getElementById("boot").textContent || "{}");
  const params = new URLSearchParams(location.search);
  const REFRESH_S = Math.min(600, Math.max(1, Number(params.get("refresh")) || 30));
  const state = {periods: [], index: 0, me: null, titles: {}, timer: null, versions: null, sources: {},
                 revalidate: new Set(), readable: new Set(), details: null, kpiSeq: 0};
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const tileUrl = (id, query) =>
    `${location.origin}/ogc/collections/${id}/tiles/WebMercatorQuad/{z}/{y}/{x}${query ? "?" + query : ""}`;
  const pct = (x) => (x == null ? "–" : `${(100 * x).toFixed(1)}%`);
  const day = (s) => (s ? String(s).slice(0, 10) : "–");
  const when = (s) => (s ? new Date(s).toLocaleString(LANG === "en" ? "en-GB" : "zh-CN",
    {hour12: false, timeZone: "Asia/Shanghai"}) : "–");  // the district's local time, whatever the browser's

  async function json(url, options) {
    const r = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}, ...(options || {})});
    if (r.status === 401) { location.href = "/login?next=/"; throw new Error("login"); }
    if (!r.ok) { const e = new Error(`${url}: ${r.status}`); e.status = r.status; throw e; }
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
    // Everything the first view needs, at once (the page embeds what it can: boot JSON).
    const [me, collections, index, towns] = await Promise.all([
      boot.me || json("/auth/me"),
      boot.collections || json("/ogc/collections").then((d) => d.collections),
      boot.index !== undefined ? boot.index : json("/ogc/collections/index-villages").catch(() => null),
      boot.bbox !== undefined ? {extent: {spatial: {bbox: [boot.bbox]}}} : json("/ogc/collections/towns").catch(() => null),
    ]);
    state.me = me;
    $("who").textContent = `${me.user} · ${T.role} ${me.role}`;
    $("logout").textContent = T.logout;
    $("logout").addEventListener("click", async () => {
      await fetch("/auth/logout", {method: "POST", credentials: "same-origin",
        headers: {"X-CSRF-Token": state.me.csrf_token || ""}});
      location.href = "/login";
    });
    for (const c of collections) state.titles[c.id] = c.title;
    state.collections = collections;
    state.readable = new Set(collections.map((c) => c.id));
    setPeriods(index);
    state.index = Math.max(0, state.periods.length - 1);
    const slider = $("period");
    slider.addEventListener("input", () => setPeriod(Number(slider.value)));
    $("play").addEventListener("click", togglePlay);

    const box = towns && towns.extent && towns.extent.spatial && towns.extent.spatial.bbox[0];
    // MapLibre's standard build starts its workers from a blob of its own code (CSP worker-src
    // blob:): no second script to fetch before the first tile request.
    const mapBox = $("map").getBoundingClientRect();
    document.cookie = `pingan_view=${Math.round(mapBox.width)}x${Math.round(mapBox.height)}; path=/; max-age=31536000; samesite=lax`;
    const basemap = boot.basemap;
    const map = new maplibregl.Map({
      container: "map", minZoom: 7, maxZoom: 18, attributionControl: basemap ? {compact: true} : false,
      fadeDuration: 0,  // a wall screen: labels appear at once (and "idle" comes 300 ms sooner)
      localIdeographFontFamily: "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif",
      ...(box ? {bounds: [[box[0], box[1]], [box[2], box[3]]], fitBoundsOptions: {padding: 20}}
              : {center: [120.62, 27.97], zoom: 10.6}),
      transformRequest: (url, kind) => (kind === "Tile" && [...state.revalidate].some((p) => url.startsWith(p))
        ? {url, cache: "no-cache"} : {url}),
      style: {version: 8, glyphs: `${location.origin}/static/glyphs/{fontstack}/{range}.pbf`, sources: {},
        layers: [{id: "background", type: "background", paint: {"background-color": "#0b1d33"}}]},
    });
    window.pinganMap = map;
    map.addControl(new maplibregl.NavigationControl({showCompass: false}), "top-right");
    map.addControl(new maplibregl.ScaleControl({unit: "metric"}), "bottom-left");
    map.on("error", (e) => console.warn("map:", e && e.error && e.error.message));
    map.once("load", () => $("loading").remove());
    // sources as soon as the style is in (not at "load", a rendered frame later): the first tile
    // requests leave while the worker is still starting
    map.once("style.load", () => {
      if (basemap) {
        map.addSource("basemap", {type: "raster", tiles: [basemap.url], tileSize: 256, attribution: basemap.attribution});
        map.addLayer({id: "basemap", type: "raster", source: "basemap", paint: {"raster-opacity": 0.85}});
      }
      if (state.readable.has("index-villages")) {
        addSource("index", () => tileUrl("index-villages", periodQuery()), 8, 16);
        map.addLayer({id: "index-fill", type: "fill", source: "index", "source-layer": "index-villages",
          paint: {"fill-color": ["coalesce", ["get", "colour_hex"], "#555"], "fill-opacity": basemap ? 0.55 : 0.78}});
      }
      addSource("base", () => `${location.origin}/ogc/tiles/WebMercatorQuad/{z}/{y}/{x}?collections=towns,villages`, 6, 16);
      map.addLayer({id: "villages-line", type: "line", source: "base", "source-layer": "villages",
        paint: {"line-color": "#ffffff", "line-opacity": 0.35, "line-width": 0.6}});
      map.addLayer({id: "towns-line", type: "line", source: "base", "source-layer": "towns",
        paint: {"line-color": "#9fc3ff", "line-width": 1.6}});
      buildLayersPanel(map);
      addLabels(map);
      map.on("click", (e) => onClick(map, e));
      for (const id of ["index-fill", "hazards", "cases"]) {
        map.on("mouseenter", id, () => { map.getCanvas().style.cursor = "pointer"; });
        map.on("mouseleave", id, () => { map.getCanvas().style.cursor = ""; });
      }
      map.once("idle", () => { document.body.dataset.readyAt = performance.now().toFixed(1); document.body.dataset.ready = "1"; });
    });
    await Promise.all([setPeriod(state.index), loadWarnings(), watchVersions()]);
    document.body.dataset.panelsAt = performance.now().toFixed(1);  // legend, KPIs and warnings drawn
  }

  function setPeriods(index) {
    const interval = index && index.extent && index.extent.temporal && index.extent.temporal.interval[0];
    state.periods = interval && interval[0] ? months(interval) : [];
    const slider = $("period");
    slider.max = String(Math.max(0, state.periods.length - 1));
  }

  function addSource(id, url, minzoom, maxzoom) {
    state.sources[id] = {url};
    window.pinganMap.addSource(id, {type: "vector", tiles: [url()], minzoom, maxzoom});
  }

  function labelsUrl() {
    return `${location.origin}/api/labels${state.periods.length ? "?period=" + state.periods[state.index].slice(0, 7) : ""}`;
  }

  function periodQuery() {
    return state.periods.length ? `period=${state.periods[state.index]}` : "";
  }

  // -- labels: town and village names (glyphs served by the app; CJK from the system font) -----
  function addLabels(map) {
    const text = {"text-font": ["Noto Sans Regular"], "text-allow-overlap": false, "text-padding": 4};
    const halo = {"text-color": "#ffffff", "text-halo-color": "#0b1d33", "text-halo-width": 1.4};
    // one point per village with the month's score (GET /api/labels): names from 11, scores from 12.5
    state.labelsShown = labelsUrl();
    map.addSource("village-points", {type: "geojson", data: labelsUrl()});
    state.sources["village-points"] = {url: labelsUrl, geojson: true};
    map.addLayer({id: "village-labels", type: "symbol", source: "village-points", minzoom: 11,
      layout: {...text, "text-size": 12, "text-field": ["step", ["zoom"], ["get", "name"], 12.5,
        ["format", ["get", "name"], {}, "\n", {}, ["number-format", ["get", "score"], {"max-fraction-digits": 1}],
         {"font-scale": 0.85}]]}, paint: halo});
    // one point per town (the page's boot data): a polygon label from tiles repeats in every tile
    map.addSource("town-points", {type: "geojson", data: {type: "FeatureCollection", features: (boot.towns || []).map(
      ([code, name, x, y]) => ({type: "Feature", properties: {code, name}, geometry: {type: "Point", coordinates: [x, y]}}))}});
    map.addLayer({id: "town-labels", type: "symbol", source: "town-points", maxzoom: 13,
      layout: {...text, "text-size": 16, "text-field": ["get", "name"]},
      paint: {"text-color": "#ffe9a8", "text-halo-color": "#0b1d33", "text-halo-width": 1.8}});
  }

  // -- the layers panel, from the registry (GET /ogc/collections: what this role may read) -----
  function buildLayersPanel(map) {
    const panel = $("layers");
    panel.innerHTML = `<h2>${T.layers}</h2>`;
    for (const c of state.collections) {
      if (SKIP.has(c.id) || !(c.links || []).some((l) => /tilesets-vector$/.test(l.rel))) continue;
      addSource(c.id, () => tileUrl(c.id, ""), 8, 16);
      const ids = [];
      for (const spec of KNOWN[c.id] || GENERIC) {
        const id = KNOWN[c.id] ? c.id : `${c.id}-${spec.suffix}`;
        map.addLayer({id, type: spec.type, source: c.id, "source-layer": c.id, paint: spec.paint,
          ...(spec.filter ? {filter: spec.filter} : {}), layout: {...(spec.layout || {}), visibility: "none"}},
          map.getLayer("villages-line") ? "villages-line" : undefined);
        ids.push(id);
      }
      toggle(panel, c.id, state.titles[c.id] || c.id, (on) => ids.forEach((id) => map.setLayoutProperty(id, "visibility", on ? "visible" : "none")));
      if (STATES[c.id]) {
        panel.insertAdjacentHTML("beforeend", `<div class="states" data-legend="${c.id}">` + STATES[c.id].map(([s, col, zh, en]) =>
          `<span class="state"><span class="dot" style="background:${col}"></span>${LANG === "en" ? en : zh}</span>`).join("") + "</div>");
      }
    }
    if (boot.rasters) loadRasters(map, panel);
  }

  function toggle(panel, id, title, onChange) {
    const box = document.createElement("label");
    box.className = "layer";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.dataset.layer = id;
    input.addEventListener("change", () => onChange(input.checked));
    box.append(input, " ", title);
    panel.append(box);
  }

  async function loadRasters(map, panel) {
    let doc;
    try { doc = await json("/api/rasters?kind=density&latest=1"); } catch (err) { console.warn(err.message); return; }
    const list = Array.isArray(doc) ? doc : (doc.rasters || doc.items || []);
    for (const r of list) {
      if (r.id == null) continue;
      const id = `density-${r.id}`;
      map.addSource(id, {type: "raster", tileSize: r.tile_size || 256, ...(r.bounds ? {bounds: r.bounds} : {}),
        tiles: [r.tiles || `${location.origin}/api/rasters/${r.id}/tiles/WebMercatorQuad/{z}/{y}/{x}.png`]});
      map.addLayer({id, type: "raster", source: id, paint: {"raster-opacity": 0.7}, layout: {visibility: "none"}},
        "villages-line");
      const name = state.titles[r.layer] || (LANG === "zh" && r.title_zh) || r.title || r.layer || r.id;
      const label = `${T.density} · ${name}${r.period ? " " + String(r.period).slice(0, 7) : ""}`;
      toggle(panel, id, label, (on) => map.setLayoutProperty(id, "visibility", on ? "visible" : "none"));
    }
  }

  // -- the month: legend, KPIs, the choropleth ---------------------------------------------------
  async function setPeriod(i) {
    state.index = i;
    const period = state.periods[i];
    $("period-label").textContent = period ? period.slice(0, 7) : "";
    $("period").value = String(i);
    document.body.dataset.period = period || "";
    const map = window.pinganMap;
    // only when the month changed: a refresh of other sources must not reload the choropleth
    if (map && map.getSource("index") && map.getSource("index").tiles[0] !== state.sources.index.url()) {
      map.getSource("index").setTiles([state.sources.index.url()]);
    }
    if (map && map.getSource("village-points") && state.labelsShown !== labelsUrl()) {
      state.labelsShown = labelsUrl();
      map.getSource("village-points").setData(labelsUrl());
    }
    if (!period) return;
    const k = await loadKpis(period);
    if (!k || state.periods[state.index] !== period) return;  // the slider moved on meanwhile
    const now = k.villages.district_classes;
    $("legend").innerHTML = `<h2>${T.legend}</h2>` + CLASSES.map(([c, hex]) =>
      `<div class="legend-row" data-class="${c}"><span><span class="swatch" style="background:${hex}"></span>${T[c]}</span>` +
      `<strong>${now[c] || 0}</strong></div>`).join("");
    if (state.details && state.details.kind === "place") showPlace(state.details.code, state.details.level);
  }

  function kpi(id, label, value, extra, cls) {
    return `<div class="kpi${cls ? " " + cls : ""}" data-kpi="${id}"><span>${label}</span>` +
      `<span><strong id="kpi-${id}">${value}</strong>${extra ? ` <small>${extra}</small>` : ""}</span></div>`;
  }

  async function loadKpis(period) {
    const seq = ++state.kpiSeq;
    let k;
    try { k = await json(`/api/kpis?period=${period.slice(0, 7)}`, {cache: "no-store"}); } catch (err) {
      $("kpis").innerHTML = `<h2>${T.kpis}</h2><p class="muted">${esc(err.message)}</p>`; return null;
    }
    if (seq !== state.kpiSeq) return null;
    const v = k.villages, h = k.hazards, d = k.disputes, o = k.overdue, p = k.persons;
    const up = v.previous_red_orange == null ? "" : v.red_orange > v.previous_red_orange ? "▲" : v.red_orange < v.previous_red_orange ? "▼" : "＝";
    let html = `<h2>${T.kpis} <small>${esc(k.period)}</small></h2>` +
      kpi("red-orange", T.redOrange, v.red_orange, `${up} ${T.lastMonth} ${v.previous_red_orange == null ? "–" : v.previous_red_orange}`);
    if (h) {
      html += kpi("hazards-found", T.hazardsFound, h.found, `${T.hazardsRectified} <b id="kpi-hazards-rectified">${h.rectified}</b>`) +
        kpi("hazards-rate", T.rate, pct(h.rate)) +
        kpi("overdue", T.overdueItems, o.total, `${T.overdueHazards} ${o.hazards} · ${T.overdueLadder} ${o.ladder}`, o.total ? "alert" : "") +
        kpi("grassroots", `${T.disputes}`, pct(d.rate), `${T.grassroots} ${d.grassroots}/${d.resolved}`);
    }
    const ge = p.exact ? "" : "≥";
    html += `<div class="kpi" data-kpi="persons"><span>${T.persons}</span><span class="grades">` +
      `<b class="g-red" id="kpi-persons-red">${ge}${p.red}</b> <b class="g-yellow" id="kpi-persons-yellow">${ge}${p.yellow}</b> ` +
      `<b class="g-green" id="kpi-persons-green">${ge}${p.green}</b></span></div>` +
      (p.exact ? "" : `<p class="muted">${T.personsNote}: ${p.suppressed_areas} ${T.towns}</p>`);
    $("kpis").innerHTML = html;
    $("kpis").dataset.period = k.period;
    return k;
  }

  // -- the warning list --------------------------------------------------------------------------
  async function loadWarnings() {
    const box = $("warnings");
    if (!box) return;
    if (!["admin", "command", "town", "grid"].includes(state.me.role)) { box.remove(); return; }
    let doc;
    try { doc = await json("/api/warnings", {cache: "no-store"}); } catch (err) {
      box.innerHTML = `<h2>${T.warnings}</h2><p class="muted">${esc(err.message)}</p>`; return;
    }
    box.innerHTML = `<h2>${T.warnings} <small>${doc.count} ${T.items}` +
      (doc.overdue ? ` · <span class="over">${T.overdue} ${doc.overdue}</span>` : "") + `</small></h2>` +
      (doc.items.length ? "" : `<p class="muted">${T.noWarnings}</p>`) +
      `<ol class="warn-list">` + doc.items.map((w) =>
        `<li class="warn step-${w.step}${w.overdue ? " overdue" : ""}" data-id="${w.id}" data-code="${esc(w.code)}" data-level="${esc(w.level)}" tabindex="0">` +
        `<span class="badge">${T.steps[w.step] || w.step}</span> <b>${esc(w.name || w.code)}</b>` +
        `<div class="meta">${T.since} ${day(w.step_since)} · ${T.deadline} ${day(w.deadline)}` +
        (w.overdue ? ` · <span class="over">${T.overdue}</span>` : "") + `</div></li>`).join("") + `</ol>`;
    const items = new Map(doc.items.map((w) => [String(w.id), w]));
    box.querySelectorAll("li.warn").forEach((li) => {
      const go = () => {
        const w = items.get(li.dataset.id);
        if (w.place) window.pinganMap.fitBounds([[w.place.bbox[0], w.place.bbox[1]], [w.place.bbox[2], w.place.bbox[3]]],
          {padding: {top: 60, bottom: 60, left: 60, right: 23 * parseFloat(getComputedStyle(document.documentElement).fontSize) + 60},
           maxZoom: w.level === "village" ? 14 : 12, duration: 800});
        showPlace(w.code, w.level);
      };
      li.addEventListener("click", go);
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    });
  }

  // -- clicks and details ------------------------------------------------------------------------
  function onClick(map, e) {
    const layers = ["hazards", "cases", "index-fill"].filter((l) => map.getLayer(l) && map.getLayoutProperty(l, "visibility") !== "none");
    const hit = map.queryRenderedFeatures(e.point, {layers})[0];
    if (!hit) return;
    if (hit.layer.id === "index-fill") showPlace(hit.properties.code, "village");
    else showRecord(hit.layer.id, hit.properties);
  }

  function openDetails() {
    const box = $("details");
    box.hidden = false;
    box.innerHTML = `<button class="close" type="button" aria-label="close">×</button><div class="body"></div>`;
    box.querySelector(".close").addEventListener("click", () => { box.hidden = true; state.details = null; });
    return box.querySelector(".body");
  }

  async function showPlace(code, level) {
    level = level || (code.length === 12 ? "village" : "town");
    state.details = {kind: "place", code, level};
    const box = $("details");
    const coll = level === "village" ? "index-villages" : "index-towns";
    const [history, more] = await Promise.all([
      json(`/ogc/collections/${coll}/items?code=${encodeURIComponent(code)}&limit=100&sortby=period`),
      state.me.role === "public" ? null
        : json(`/api/places/${code}?period=${(state.periods[state.index] || "").slice(0, 7)}`).catch(() => null),
    ]);
    if (!state.details || state.details.code !== code) return;
    const body = openDetails();
    box.dataset.code = code;
    box.dataset.kind = "place";
    const scores = history.features.map((f) => f.properties.score);
    const current = history.features.find((f) => f.properties.period === state.periods[state.index]);
    const q = current ? current.properties : (history.features.at(-1) || {properties: {}}).properties;
    let html = `<h2>${esc(q.name || code)} <small>${code}</small></h2>` +
      `<table class="breakdown"><tr><td>${T.period}</td><td>${String(q.period || "").slice(0, 7)}</td></tr>` +
      `<tr><td>${T.score}</td><td id="detail-score">${q.score == null ? "–" : Number(q.score).toFixed(2)}</td></tr>` +
      `<tr><td>${T.colour}</td><td><span class="swatch" style="background:${q.colour_hex}"></span>${T[q.class] || q.class || "–"}</td></tr>` +
      `<tr><td>${T.rank}</td><td>${q.rank == null ? "–" : q.rank}</td></tr><tr><td>${T.change}</td><td>${q.change == null ? "–" : Number(q.change).toFixed(2)}</td></tr>` +
      (q.veto ? `<tr><td>${T.veto}</td><td>✔</td></tr>` : "") + `</table>` +
      `<h3>${T.trend}</h3>${sparkline(scores)}`;
    if (more && more.indicators_withheld) {
      html += `<h3>${T.breakdown}</h3><p class="muted" id="detail-indicators-withheld">${T.notForRole}</p>` +
        (more.veto_reasons && more.veto_reasons.length
          ? `<p class="muted">${T.veto}: ${more.veto_reasons.map(esc).join("; ")}</p>` : "");
    } else if (more && more.indicators) {
      const shown = more.indicators.filter((i) => !i.skipped);
      const top = Math.max(0.01, ...shown.map((i) => i.deduction || 0));
      html += `<h3>${T.breakdown}</h3><table class="breakdown" id="detail-indicators">` + shown.map((i) =>
        `<tr data-indicator="${esc(i.id)}"><td>${esc((INDICATORS[i.id] || [])[LANG === "en" ? 1 : 0] || i.label)}</td>` +
        `<td class="bar"><span style="width:${(100 * (i.deduction || 0) / top).toFixed(0)}%"></span></td>` +
        `<td class="num">${(i.deduction || 0) >= 0.005 ? "−" + Number(i.deduction).toFixed(2) : "0"}</td></tr>`).join("") +
        `</table>` + (more.veto_reasons && more.veto_reasons.length
          ? `<p class="muted">${T.veto}: ${more.veto_reasons.map(esc).join("; ")}</p>` : "");
    }
    if (more && more.warnings) {
      html += `<h3>${T.openWarnings}</h3>` + (more.warnings.length ? `<ul class="plain" id="detail-warnings">` + more.warnings.map((w) =>
        `<li class="warn step-${w.step}${w.overdue ? " overdue" : ""}"><span class="badge">${T.steps[w.step]}</span> ` +
        `${T.since} ${day(w.step_since)} · ${T.deadline} ${day(w.deadline)}${w.overdue ? ` · <span class="over">${T.overdue}</span>` : ""}` +
        `<div class="meta">${T.owner}: ${esc(w.owner)}</div></li>`).join("") + `</ul>` : `<p class="muted">${T.noWarnings}</p>`);
    }
    body.innerHTML = html;
  }

  async function showRecord(layer, p) {
    const box = $("details");
    if (!p.code) {  // aggregated at this zoom: a count per state
      const body = openDetails();
      box.dataset.kind = "aggregate";
      const rows = STATES[layer].filter(([s]) => p[`count_${s}`] || p.state === s).map(([s, c]) =>
        `<tr><td><span class="dot" style="background:${c}"></span>${stateName(layer, s)}</td>` +
        `<td class="num">${p[`count_${s}`] || p.count}</td></tr>`).join("");
      body.innerHTML = `<h2>${esc(state.titles[layer] || layer)} <small>${p.count} ${T.aggregated}</small></h2>` +
        `<table class="breakdown" id="detail-aggregate">${rows}</table>`;
      return;
    }
    state.details = {kind: "record", code: p.code};
    const kind = layer === "hazards" ? "hazards" : "cases";
    let r;
    try { r = await json(`/api/${kind}/${encodeURIComponent(p.code)}/history`); } catch (err) {
      const body = openDetails();
      body.innerHTML = `<h2>${esc(p.code)}</h2><p class="muted">${err.status === 404 || err.status === 403 ? T.notSeen : esc(err.message)}</p>`;
      return;
    }
    if (!state.details || state.details.code !== p.code) return;
    const body = openDetails();
    box.dataset.code = p.code;
    box.dataset.kind = kind;
    const reached = new Map(r.events.map((e) => [e.to_state, e]));
    const flow = kind === "hazards" ? ["found", "assigned", "handling", "feedback", "verified", "closed"]
      : ["accepted", "mediating", r.transferred_at && !r.resolved_at ? "transferred" : "resolved", "closed"];
    body.innerHTML = `<h2>${esc(r.title || r.code)} <small>${esc(r.code)}</small></h2>` +
      `<table class="breakdown"><tr><td>${T.state}</td><td id="detail-state">${stateName(kind, r.state)}</td></tr>` +
      (r.deadline ? `<tr><td>${T.deadlineShort}</td><td>${when(r.deadline)}</td></tr>` : "") + `</table>` +
      `<h3>${T.history}</h3><ol class="flow" id="detail-flow">` + flow.map((s) => {
        const e = reached.get(s);
        return `<li class="${e ? "done" : ""}${r.state === s ? " current" : ""}" data-state="${s}"><b>${stateName(kind, s)}</b>` +
          `<span>${e ? when(e.at) : ""}</span>${e && e.actor ? `<small>${esc(e.actor)}</small>` : ""}${e && e.note ? `<small>${esc(e.note)}</small>` : ""}</li>`;
      }).join("") + `</ol>` +
      `<h3>${LANG === "en" ? "Events" : "全部记录"} (${r.events.length})</h3><table class="breakdown" id="detail-events">` +
      r.events.map((e) => `<tr><td>${when(e.at)}</td><td>${e.from_state ? stateName(kind, e.from_state) + " → " : ""}${stateName(kind, e.to_state)}</td></tr>`).join("") +
      `</table>`;
  }

  function sparkline(values) {
    if (values.length < 2) return "";
    const lo = Math.min(...values), hi = Math.max(...values), w = 200, h = 40;
    const pts = values.map((v, i) => `${(i / (values.length - 1)) * w},${h - ((v - lo) / (hi - lo || 1)) * h}`).join(" ");
    return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><polyline fill="none" stroke="#9fc3ff" stroke-width="2" points="${pts}"/></svg>`;
  }

  function togglePlay() {
    if (state.timer) { clearInterval(state.timer); state.timer = null; $("play").textContent = "▶"; return; }
    $("play").textContent = "❚❚";
    state.timer = setInterval(() => setPeriod((state.index + 1) % Math.max(1, state.periods.length)), 1500);
  }

  // -- self-refresh after an ETL load: poll layer versions, reload only what changed -------------
  async function watchVersions() {
    try { state.versions = (await json("/api/versions", {cache: "no-store"})).versions; } catch (err) { return; }
    setInterval(checkVersions, REFRESH_S * 1000);
  }

  async function checkVersions() {
    let now;
    try { now = (await json("/api/versions", {cache: "no-store"})).versions; } catch (err) { return; }
    const changed = new Set(Object.keys(now).filter((k) => now[k] !== state.versions[k]));
    state.versions = now;
    if (!changed.size) return;
    const map = window.pinganMap;
    const reloaded = [];
    for (const [id, src] of Object.entries(state.sources)) {
      const deps = DEPENDS[id] || [id];
      if (!deps.some((d) => changed.has(d)) || !map.getSource(id)) continue;
      const url = src.url();
      if (src.geojson) { map.getSource(id).setData(url + (url.includes("?") ? "&" : "?") + `v=${Date.now()}`); reloaded.push(id); continue; }
      state.revalidate.add(url.split("{z}")[0]);  // from now on the browser revalidates its tiles
      map.getSource(id).setTiles([url]);
      reloaded.push(id);
    }
    const touches = (...ids) => ids.some((d) => changed.has(d));
    if (touches("index-villages", "index-towns")) {
      const index = await json("/ogc/collections/index-villages", {cache: "no-store"}).catch(() => null);
      const latest = state.index === state.periods.length - 1;
      setPeriods(index);
      if (latest) state.index = state.periods.length - 1;
    }
    if (touches("index-villages", "index-towns", "hazards", "cases", "persons", "monthly-stats")) {
      await setPeriod(Math.min(state.index, Math.max(0, state.periods.length - 1)));
    }
    if (touches("index-villages", "index-towns")) await loadWarnings();
    document.body.dataset.refreshed = reloaded.join(",");
    document.body.dataset.refreshCount = String(Number(document.body.dataset.refreshCount || 0) + 1);
  }

  start().catch((err) => { if (err.message !== "login") console.error(err); });
})();
