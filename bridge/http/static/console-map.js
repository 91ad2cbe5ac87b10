// The map page: MapLibre GL JS (served by the service itself, no CDN, no tile server needed) draws
// the grid layer from GET /map/grids.geojson once (panning and zooming never ask again), cameras
// with their state, and open incidents coloured by their light. Everything the /map endpoints
// return is already in one coordinate system (the service converts); the page never converts.
"use strict";

const MapPage = (() => {
  const { api, el } = Console;
  const LIGHTS = { green: "#3fb950", yellow: "#d29922", red: "#e5534b" };
  const timings = {};  // read by the tests: how long 10,000 grids take to load and draw
  let map = null, selected = null, hovered = null, popup = null;
  const cameraMarkers = new Map();

  function fail(message) {
    document.getElementById("map-error").textContent = message;
  }

  function baseStyle(settings) {
    // No `glyphs`: MapLibre draws label text with the browser's own fonts (CJK included), offline.
    const style = { version: 8, sources: {}, layers: [
      { id: "background", type: "background", paint: { "background-color": "#0b1118" } }] };
    if (settings.tile_url) {
      style.sources.tiles = { type: "raster", tiles: [settings.tile_url], tileSize: 256,
                              maxzoom: settings.tile_max_zoom, attribution: settings.tile_attribution || undefined };
      style.layers.push({ id: "tiles", type: "raster", source: "tiles" });
    }
    return style;
  }

  const level = name => ["==", ["get", "level"], name];

  function addGridLayers(doc) {
    // Label points come with each feature (lx, ly): one label per polygon, never one per tile.
    const labels = { type: "FeatureCollection", features: doc.features.map(f => ({
      type: "Feature", properties: { code: f.properties.code, name: f.properties.name, level: f.properties.level },
      geometry: { type: "Point", coordinates: [f.properties.lx, f.properties.ly] } })) };
    map.addSource("grids", { type: "geojson", data: doc, promoteId: "code", tolerance: 0.2 });
    map.addSource("labels", { type: "geojson", data: labels });
    map.addLayer({ id: "grid-fill", type: "fill", source: "grids", filter: level("grid"), paint: {
      "fill-color": ["case", ["boolean", ["feature-state", "selected"], false], "rgba(229,83,75,0.45)",
                     ["boolean", ["feature-state", "hover"], false], "rgba(68,147,248,0.30)", "rgba(68,147,248,0.08)"] } });
    map.addLayer({ id: "grid-line", type: "line", source: "grids", filter: level("grid"), paint: {
      "line-color": "#3a4b5c", "line-width": ["interpolate", ["linear"], ["zoom"], 11, 0.2, 16, 1] } });
    map.addLayer({ id: "community-line", type: "line", source: "grids", filter: level("community"), paint: {
      "line-color": "#6b7f93", "line-width": 1.2, "line-dasharray": [3, 2] } });
    map.addLayer({ id: "street-line", type: "line", source: "grids", filter: ["in", ["get", "level"], ["literal", ["street", "district"]]],
                   paint: { "line-color": "#a9bccf", "line-width": 2.2 } });
    const text = { "text-color": "#e6edf3", "text-halo-color": "#0b1118", "text-halo-width": 1.5 };
    map.addLayer({ id: "street-label", type: "symbol", source: "labels", filter: level("street"), maxzoom: 15,
                   layout: { "text-field": ["get", "name"], "text-size": 15 }, paint: text });
    map.addLayer({ id: "community-label", type: "symbol", source: "labels", filter: level("community"), minzoom: 13.5, maxzoom: 17,
                   layout: { "text-field": ["get", "name"], "text-size": 12 }, paint: { ...text, "text-color": "#c9d5e1" } });
    map.addLayer({ id: "grid-label", type: "symbol", source: "labels", filter: level("grid"), minzoom: 16,
                   layout: { "text-field": ["format", ["get", "name"], {}, "\n", {}, ["get", "code"], { "font-scale": 0.8 }],
                             "text-size": 11 }, paint: { ...text, "text-color": "#8b98a5" } });
    map.addSource("incidents", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: "incidents", type: "circle", source: "incidents", paint: {
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 4, 16, 9],
      "circle-color": ["match", ["get", "light"], "red", LIGHTS.red, "yellow", LIGHTS.yellow, LIGHTS.green],
      "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 } });
  }

  function setState(code, key, value) {
    if (code) map.setFeatureState({ source: "grids", id: code }, { [key]: value });
  }

  function describeGrid(p) {
    return [p.name, p.code, p.community, p.street].filter(Boolean).join(" · ");
  }

  function wireGridEvents() {
    popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, className: "grid-tip", offset: 8 });
    map.on("mousemove", "grid-fill", e => {
      const p = e.features[0].properties;
      if (hovered !== p.code) { setState(hovered, "hover", false); hovered = p.code; setState(hovered, "hover", true); }
      map.getCanvas().style.cursor = "pointer";
      popup.setLngLat(e.lngLat).setText(describeGrid(p)).addTo(map);
    });
    map.on("mouseleave", "grid-fill", () => {
      setState(hovered, "hover", false); hovered = null;
      map.getCanvas().style.cursor = ""; popup.remove();
    });
    map.on("click", "grid-fill", e => selectArea(e.features[0].properties.code));
  }

  function age(s) {
    if (s < 120) return `${Math.round(s)} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function incidentItem(inc) {
    const src = inc.source.camera_id || inc.source.sensor_id || inc.source.kind;
    return el("li", { class: "incident", "data-incident": inc.incident_id, "data-light": inc.light, title: inc.light_reason },
      el("span", { class: "light " + inc.light }),
      el("div", {},
        el("strong", { text: inc.category.name }), " ", el("span", { class: `status ${inc.status}`, text: inc.status }),
        el("div", { class: "muted", text: `${src} · open ${age(inc.age_s)} · ${inc.light_reason}` })),
      inc.snapshot ? el("img", { src: inc.snapshot, alt: "evidence", loading: "lazy" }) : null);
  }

  async function selectArea(code) {
    setState(selected, "selected", false); selected = code; setState(selected, "selected", true);
    const box = document.getElementById("area");
    box.dataset.code = code; box.dataset.state = "loading";
    try {
      const page = await api(`/map/incidents?grid=${encodeURIComponent(code)}`);
      if (selected !== code) return;  // another click came first
      const a = page.area;
      const list = el("ul", { id: "area-incidents" }, ...page.incidents.map(incidentItem));
      box.replaceChildren(
        el("h2", { text: `${a.name} · ${a.code}` }),
        el("div", { class: "muted", text: [a.community, a.street].filter(Boolean).join(" · ") || a.level }),
        el("div", { id: "area-count", text: page.incidents.length ? `${page.incidents.length} open incident(s)` : "no open incidents" }),
        list);
      box.dataset.state = "done";
    } catch (e) {
      box.dataset.state = "error";
      box.replaceChildren(el("div", { class: "err", text: Console.describe(e) }));
    }
  }

  async function refreshIncidents() {
    const page = await api("/map/incidents");
    const features = page.incidents.filter(i => i.point).map(i => ({ type: "Feature",
      properties: { light: i.light, incident: i.incident_id, category: i.category.name, status: i.status },
      geometry: { type: "Point", coordinates: i.point } }));
    map.getSource("incidents").setData({ type: "FeatureCollection", features });
    for (const light of Object.keys(LIGHTS))
      document.querySelector(`#legend [data-light=${light}]`).textContent = page.incidents.filter(i => i.light === light).length;
    if (selected) await selectArea(selected);
  }

  async function refreshCameras() {
    const cams = await api("/map/cameras");
    for (const c of cams) {
      if (!c.point) continue;
      let m = cameraMarkers.get(c.id);
      if (!m) {
        const dot = el("div", { class: "cam-marker", "data-camera": c.id });
        m = new maplibregl.Marker({ element: dot }).setLngLat(c.point).addTo(map);
        cameraMarkers.set(c.id, m);
      }
      const dot = m.getElement();
      dot.className = `cam-marker state-${c.state}`;
      dot.title = `${c.name || c.id} · ${c.state} since ${new Date(c.since * 1000).toLocaleString()}` +
        (c.last_error ? ` · ${c.last_error}` : "");
      m.setLngLat(c.point);
    }
    const online = cams.filter(c => c.state === "online").length;
    document.getElementById("cam-count").textContent = `cameras: ${online} of ${cams.length} online`;
  }

  function kib(n) { return n ? `${(n / 1024).toFixed(0)} KiB` : "?"; }

  async function start() {
    if (!(await Console.start("map"))) return;
    const settings = await api("/map/config");
    if (!settings.library || typeof maplibregl === "undefined")
      return fail("MapLibre GL JS is not installed on the server: run `make setup` (npm ci --prefix web).");
    if (!settings.grids) return fail("No grid layer is loaded in this service.");
    map = new maplibregl.Map({ container: "map", style: baseStyle(settings), center: [0, 0], zoom: 1, maxZoom: 20,
                               attributionControl: settings.tile_url ? {} : false, dragRotate: false,
                               fadeDuration: 0 });  // labels appear at once: fewer frames to draw
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));
    await new Promise(resolve => map.once("load", resolve));
    const t0 = performance.now();
    const res = await fetch("/map/grids.geojson", { credentials: "same-origin" });
    if (!res.ok) return fail(`grid layer: HTTP ${res.status}`);
    const doc = await res.json();
    const t1 = performance.now();
    addGridLayers(doc);
    map.fitBounds([[doc.bbox[0], doc.bbox[1]], [doc.bbox[2], doc.bbox[3]]], { padding: 20, animate: false });
    await new Promise(resolve => map.once("idle", resolve));
    const t2 = performance.now();
    const entry = performance.getEntriesByName(new URL("/map/grids.geojson", location.href).href)[0];
    Object.assign(timings, { grids: doc.xueliang.grids, features: doc.features.length, fetch_ms: Math.round(t1 - t0),
                             draw_ms: Math.round(t2 - t1), transfer_bytes: entry ? entry.encodedBodySize : null,
                             json_bytes: entry ? entry.decodedBodySize : null });
    document.getElementById("map-stats").textContent = `${doc.xueliang.grids.toLocaleString()} grids of ${doc.xueliang.layer} ` +
      `(${doc.xueliang.crs}) · ${kib(timings.transfer_bytes)} sent · fetched and parsed in ${timings.fetch_ms} ms · ` +
      `drawn in ${timings.draw_ms} ms`;
    document.getElementById("map").dataset.state = "ready";
    wireGridEvents();
    await Promise.all([refreshIncidents(), refreshCameras()]).catch(e => fail(Console.describe(e)));
    let pending = null;  // a burst of events refreshes once
    const es = new EventSource("/events/stream");
    es.addEventListener("event", () => {
      clearTimeout(pending);
      pending = setTimeout(() => refreshIncidents().catch(e => console.warn("incidents", e)), 1000);
    });
    setInterval(() => refreshIncidents().catch(e => console.warn("incidents", e)), 15000);  // ages and lights move on
    setInterval(() => refreshCameras().catch(e => console.warn("cameras", e)), 10000);
  }

  return { start, timings, get map() { return map; }, selectArea };
})();

MapPage.start();
