// Live video for the console: `GET /cameras/{id}/live.mp4` (fragmented MP4 from the service's
// restreamer, behind the session cookie) read as a fetch stream and fed to Media Source Extensions.
// No re-encoding anywhere: the camera's H.264 is what the browser decodes. The player keeps to
// the live edge (about a second behind the camera), trims what it has played, and reconnects.
// `LiveTile` adds the overlay of the last analysed frame's boxes and zones, and the offline notice.
"use strict";

const Live = (() => {
  const MAX_LAG_S = 1.5;   // further behind the newest frame than this: jump to the live edge
  const KEEP_S = 10;       // seconds of played video kept in the buffer
  const hex = x => x.toString(16).padStart(2, "0");

  // Top-level MP4 boxes: [type, start, end] while they are complete in `buf`.
  function boxes(buf) {
    const out = [];
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    for (let at = 0; at + 8 <= buf.length;) {
      const size = dv.getUint32(at);
      const type = String.fromCharCode(buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]);
      if (size < 8 || at + size > buf.length) break;
      out.push([type, at, at + size]);
      at += size;
    }
    return out;
  }

  // The RFC 6381 codecs of the init segment's sample entries: avcC (profile, constraints, level),
  // hvcC, and AAC audio (mp4a) where a restreamer passes the camera's audio on too.
  function codecOf(moov) {
    const at = (i, s) => [...s].every((ch, j) => moov[i + j] === ch.charCodeAt(0));
    let video = null, audio = null;
    for (let i = 0; i + 8 < moov.length; i++) {
      if (!video && at(i, "avcC")) video = `avc1.${hex(moov[i + 5])}${hex(moov[i + 6])}${hex(moov[i + 7])}`;
      else if (!video && at(i, "hvcC")) video = "hvc1.1.6.L93.B0";
      else if (!audio && at(i, "mp4a")) audio = "mp4a.40.2";
    }
    return video && audio ? `${video},${audio}` : video;
  }

  class Player {
    constructor(video, cameraId, onStatus = () => {}) {
      this.video = video; this.id = cameraId; this.onStatus = onStatus;
      this.stopped = false; this.abort = null; this.timer = null;
      video.muted = true; video.autoplay = true; video.playsInline = true;
    }

    start() { this.stopped = false; this._run(); return this; }

    stop() {
      this.stopped = true;
      if (this.abort) this.abort.abort();
      clearTimeout(this.timer);
    }

    async _run() {
      this.abort = new AbortController();
      let status = "connecting";
      this.onStatus(status);
      try {
        const res = await fetch(`/cameras/${encodeURIComponent(this.id)}/live.mp4`,
                                { credentials: "same-origin", signal: this.abort.signal });
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          status = res.status === 404 ? "unavailable" : "error";
          this.onStatus(status, typeof body.detail === "string" ? body.detail : `HTTP ${res.status}`);
          if (res.status === 404) return;  // live video is off for this camera: nothing to retry
          throw new Error(`HTTP ${res.status}`);
        }
        await this._play(res.body.getReader());
        this.onStatus("ended", "the stream ended");
      } catch (e) {
        if (this.stopped) return;
        this.onStatus("error", String(e.message || e));
      }
      if (!this.stopped) this.timer = setTimeout(() => this._run(), 3000);
    }

    async _play(reader) {
      let head = new Uint8Array(0), sb = null, ms = null;
      const queue = [];
      const pump = () => {
        if (!sb || sb.updating || !queue.length) return;
        const v = this.video;
        if (v.buffered.length && v.currentTime - v.buffered.start(0) > KEEP_S * 2) {
          sb.remove(0, v.currentTime - KEEP_S);  // played long ago
          return;
        }
        sb.appendBuffer(queue.shift());
      };
      while (!this.stopped) {
        const { value, done } = await reader.read();
        if (done) return;
        if (!sb) {  // gather the init segment (ftyp + moov) to learn the codec
          const joined = new Uint8Array(head.length + value.length);
          joined.set(head); joined.set(value, head.length); head = joined;
          const moov = boxes(head).find(b => b[0] === "moov");
          if (!moov) continue;
          const codec = codecOf(head.subarray(moov[1], moov[2]));
          const type = `video/mp4; codecs="${codec}"`;
          if (!codec || !window.MediaSource || !MediaSource.isTypeSupported(type))
            throw new Error(`this browser cannot play ${type} through Media Source Extensions`);
          ms = new MediaSource();
          this.video.src = URL.createObjectURL(ms);
          await new Promise(r => ms.addEventListener("sourceopen", r, { once: true }));
          sb = ms.addSourceBuffer(type);
          sb.mode = "segments";
          sb.addEventListener("updateend", () => { this._chase(); pump(); });
          sb.addEventListener("error", () => this.onStatus("error", "the browser rejected the stream"));
          queue.push(head);
          head = null;
        } else queue.push(value);
        pump();
      }
    }

    _chase() {  // stay at the live edge
      const v = this.video;
      if (!v.buffered.length) return;
      const end = v.buffered.end(v.buffered.length - 1);
      if (end - v.currentTime > MAX_LAG_S || v.currentTime < v.buffered.start(v.buffered.length - 1))
        v.currentTime = Math.max(end - 0.3, v.buffered.start(v.buffered.length - 1));
      if (v.paused) v.play().then(() => this.onStatus("playing")).catch(() => {});
    }
  }

  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  // The last analysed frame's tracks and the camera's zones, in normalised coordinates, drawn
  // over the video (viewBox 0..1 on the video's own box).
  const STALE_S = 3;  // boxes older than this (analysis behind, or stopped) are not drawn

  function drawOverlay(layer, o) {
    layer.replaceChildren();
    const fresh = o.at !== null && Date.now() / 1000 - o.at < STALE_S;
    for (const z of o.zones) {
      layer.append(svg("polygon", { class: "zone", points: z.polygon.map(p => p.join(",")).join(" ") }));
    }
    for (const t of fresh ? o.tracks : []) {
      const [x1, y1, x2, y2] = t.box;
      const g = svg("g", { class: "track" });
      g.append(svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
      const label = svg("text", { x: x1 + 0.005, y: y1 > 0.06 ? y1 - 0.01 : y1 + 0.05 });  // inside at the top edge
      label.textContent = `${t.label} #${t.id}`;
      g.append(label);
      layer.append(g);
    }
  }

  // One camera's live picture: <video>, overlay, and a notice while the camera is not online.
  class Tile {
    constructor(cameraId, { overlay = true } = {}) {
      this.id = cameraId;
      this.video = document.createElement("video");
      this.video.className = "live";
      this.layer = svg("svg", { class: "overlay", viewBox: "0 0 1 1", preserveAspectRatio: "none" });
      this.notice = document.createElement("div");
      this.notice.className = "notice hidden";
      this.root = document.createElement("div");
      this.root.className = "livebox";
      this.root.dataset.camera = cameraId;
      this.root.append(this.video, this.layer, this.notice);
      this.video.addEventListener("loadedmetadata", () => {  // the box takes the picture's shape: overlay lines up
        const { videoWidth: w, videoHeight: h } = this.video;
        if (w && h) this.root.style.aspectRatio = `${w} / ${h}`;
      });
      this.status = "connecting";
      this.player = new Player(this.video, cameraId, (s, why) => {
        this.status = s; this.root.dataset.live = s;
        if (s === "unavailable") this.root.classList.add("nolive");
        if (why && s !== "playing") console.info(`live ${cameraId}: ${s}: ${why}`);
      }).start();
      this.showOverlay = overlay;
      if (overlay) this.timer = setInterval(() => this.refreshOverlay(), 1000);
    }

    async refreshOverlay() {
      if (!this.showOverlay || document.hidden || this.status === "unavailable") return;
      try {
        const res = await fetch(`/cameras/${encodeURIComponent(this.id)}/overlay`, { credentials: "same-origin" });
        if (res.ok) drawOverlay(this.layer, await res.json());
      } catch (e) { console.warn("overlay", this.id, e); }
    }

    // From GET /cameras: say so on the picture when the camera is not online, with why and since when.
    camera(c) {
      const down = c.state !== "online";
      this.notice.classList.toggle("hidden", !down);
      this.root.classList.toggle("down", down);
      if (down) {
        const since = new Date((c.down_since || c.since) * 1000).toLocaleString();
        this.notice.replaceChildren(
          Object.assign(document.createElement("strong"), { textContent: c.state }),
          Object.assign(document.createElement("div"), { textContent: c.last_error || "no frames from the camera" }),
          Object.assign(document.createElement("div"), { className: "since", textContent: `since ${since}` }));
      }
    }

    close() { this.player.stop(); clearInterval(this.timer); this.video.removeAttribute("src"); }
  }

  return { Player, Tile, codecOf, boxes };
})();
