// revurb's debug console. Plain JavaScript, no dependencies: served by
// revurb itself from the API port, it works without the internet.
"use strict";

// ---- Signing, as the Pusher server SDKs sign (HMAC-SHA256, and MD5 of
// the body). In plain JS: crypto.subtle exists only on https or
// localhost, and has no MD5.

function utf8(s) { return new TextEncoder().encode(s); }
function hex(bytes) { return Array.from(bytes, b => b.toString(16).padStart(2, "0")).join(""); }

const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

// pad appends the MD-style padding: 0x80, zeros, the bit length in 8
// bytes, big-endian (SHA-256) or little-endian (MD5).
function pad(msg, bigEndian) {
  const n = ((msg.length + 9 + 63) >> 6) << 6;
  const out = new Uint8Array(n);
  out.set(msg);
  out[msg.length] = 0x80;
  const bits = msg.length * 8;
  const dv = new DataView(out.buffer);
  if (bigEndian) { dv.setUint32(n - 8, Math.floor(bits / 2 ** 32)); dv.setUint32(n - 4, bits >>> 0); }
  else { dv.setUint32(n - 8, bits >>> 0, true); dv.setUint32(n - 4, Math.floor(bits / 2 ** 32), true); }
  return out;
}

function sha256(msg) {
  const m = pad(msg, true), dv = new DataView(m.buffer);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < m.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32), ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(4 * i, x));
  return out;
}

function hmacSHA256(key, msg) {
  let k = utf8(key);
  if (k.length > 64) k = sha256(k);
  const ipad = new Uint8Array(64 + msg.length), opad = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) { ipad[i] = (k[i] || 0) ^ 0x36; opad[i] = (k[i] || 0) ^ 0x5c; }
  ipad.set(msg, 64);
  opad.set(sha256(ipad), 64);
  return hex(sha256(opad));
}

const MD5S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const MD5K = new Uint32Array(64).map((_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));

function md5(msg) {
  const m = pad(msg, false), dv = new DataView(m.buffer);
  const h = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  for (let off = 0; off < m.length; off += 64) {
    let [a, b, c, d] = h;
    for (let i = 0; i < 64; i++) {
      let f, g;
      if (i < 16) { f = (b & c) | (~b & d); g = i; }
      else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
      else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
      else { f = c ^ (b | ~d); g = (7 * i) % 16; }
      const s = MD5S[(i >> 4) * 4 + (i & 3)];
      const x = (a + f + MD5K[i] + dv.getUint32(off + 4 * g, true)) >>> 0;
      a = d; d = c; c = b; b = (b + ((x << s) | (x >>> (32 - s)))) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
  }
  const out = new Uint8Array(16), ov = new DataView(out.buffer);
  h.forEach((x, i) => ov.setUint32(4 * i, x, true));
  return hex(out);
}

// signedURL is path with the query the Pusher HTTP API checks:
// auth_key, auth_timestamp, auth_version, body_md5 for a body, and
// auth_signature over METHOD\nPATH\nQUERY.
function signedURL(method, path, key, secret, body) {
  const q = { auth_key: key, auth_timestamp: String(Math.floor(Date.now() / 1000)), auth_version: "1.0" };
  if (body) q.body_md5 = md5(utf8(body));
  const query = Object.keys(q).sort().map(k => k + "=" + q[k]).join("&");
  const sig = hmacSHA256(secret, utf8(method + "\n" + path + "\n" + query));
  return path + "?" + Object.keys(q).map(k => k + "=" + encodeURIComponent(q[k])).join("&") + "&auth_signature=" + sig;
}

// ---- The session: who is watching, and how requests go.

const base = location.pathname.replace(/\/+$/, "");           // /console, or /prefix/console
const apiBase = base.slice(0, base.length - "/console".length); // "" or /prefix
const $ = id => document.getElementById(id);
let session = null; // {mode: "secret", id, secret} | {mode: "token", token}
let stream = null;  // AbortController of the open stream

function tokenHeaders() { return session.mode === "token" ? { Authorization: "Bearer " + session.token } : {}; }

async function login(s) {
  session = s;
  $("login-error").textContent = "";
  const pick = $("app-pick");
  pick.innerHTML = "";
  if (s.mode === "token") {
    const r = await fetch(base + "/apps", { headers: tokenHeaders() });
    if (!r.ok) { return fail((await r.json().catch(() => ({}))).error || r.statusText); }
    const { apps } = await r.json();
    for (const a of apps) pick.append(new Option(a.id + (a.enabled ? "" : " (disabled)"), a.id));
    $("who").textContent = "operator";
  } else {
    pick.append(new Option(s.id, s.id));
    $("who").textContent = "app " + s.id;
  }
  sessionStorage.setItem("revurb-console", JSON.stringify(s));
  $("login").hidden = true;
  $("main").hidden = false;
  watch(pick.value);
}

function fail(msg) {
  session = null;
  sessionStorage.removeItem("revurb-console");
  $("login").hidden = false;
  $("main").hidden = true;
  $("login-error").textContent = msg;
}

$("login-app").addEventListener("submit", e => {
  e.preventDefault();
  login({ mode: "secret", id: $("app-id").value.trim(), key: $("app-key").value.trim(), secret: $("app-secret").value });
});
$("login-token").addEventListener("submit", e => { e.preventDefault(); login({ mode: "token", token: $("token").value }); });
$("logout").addEventListener("click", () => { if (stream) stream.abort(); fail(""); });
$("app-pick").addEventListener("change", e => watch(e.target.value));

// ---- The stream: Server-Sent Events read through fetch, which can send
// the token in a header (EventSource cannot).

let history = []; // {t, conns, msgs} per second, last 60

async function watch(id) {
  if (stream) stream.abort();
  stream = new AbortController();
  const ctl = stream;
  history = [];
  $("stream").tBodies[0].innerHTML = "";
  $("skipped").textContent = "";
  let attempt = 0;
  while (!ctl.signal.aborted) {
    const path = base + "/apps/" + encodeURIComponent(id) + "/stream";
    const url = session.mode === "token" ? path : signedURL("GET", path, session.key, session.secret, "");
    setStatus("connecting…", "");
    try {
      const r = await fetch(url, { headers: tokenHeaders(), signal: ctl.signal, cache: "no-store" });
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        if (r.status === 401 || r.status === 404) return fail(body.error || r.statusText);
        throw new Error(body.error || r.statusText);
      }
      attempt = 0;
      setStatus("live", "ok");
      await readSSE(r.body, onMessage);
    } catch (err) {
      if (ctl.signal.aborted) return;
      setStatus("reconnecting: " + err.message, "warn");
    }
    if (ctl.signal.aborted) return;
    await new Promise(res => setTimeout(res, Math.min(5000, 500 * 2 ** attempt++)));
  }
}

async function readSSE(body, on) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      on(event, data ? JSON.parse(data) : null);
    }
  }
}

function setStatus(text, cls) { const s = $("status"); s.textContent = text; s.className = "status " + cls; }

function onMessage(event, d) {
  if (event === "state") return showState(d);
  if (event === "tap") return showEvent(d);
}

let lastMessages = 0;
function showState(st) {
  if (st.removed) { setStatus("the app was removed", "warn"); return; }
  $("connections").textContent = st.connections;
  $("channel-count").textContent = st.channels_total;
  const rate = history.length ? Math.max(0, st.messages - lastMessages) : 0;
  lastMessages = st.messages;
  $("rate").textContent = rate;
  history.push({ conns: st.connections, msgs: rate });
  if (history.length > 60) history.shift();
  drawChart();
  const tb = $("channels").tBodies[0];
  tb.innerHTML = "";
  for (const c of st.channels || []) {
    const tr = tb.insertRow();
    tr.dataset.channel = c.name;
    tr.insertCell().textContent = c.name;
    tr.insertCell().textContent = c.subscribers;
    tr.insertCell().textContent = c.users ? c.users.join(", ") + (c.user_count > c.users.length ? " … (" + c.user_count + ")" : "") : "";
  }
  $("channels-more").textContent = st.channels_total > (st.channels || []).length ? "and " + (st.channels_total - st.channels.length) + " more" : "";
  if (st.skipped > 0) {
    skipped += st.skipped;
    $("skipped").textContent = skipped + " events skipped (the console could not keep up)";
  }
}
let skipped = 0;

// drawChart draws the last minute: connections (left scale) and
// messages per second (right scale), as two polylines in an SVG.
function drawChart() {
  const svg = $("chart"), W = 300, H = 90, n = 60;
  const maxC = Math.max(1, ...history.map(h => h.conns)), maxM = Math.max(1, ...history.map(h => h.msgs));
  const pts = (key, max) => history.map((h, i) => {
    const x = W - (history.length - 1 - i) * (W / (n - 1));
    const y = H - 4 - (h[key] / max) * (H - 14);
    return x.toFixed(1) + "," + y.toFixed(1);
  }).join(" ");
  svg.innerHTML =
    `<line x1="0" y1="${H - 4}" x2="${W}" y2="${H - 4}" class="axis"/>` +
    `<polyline points="${pts("conns", maxC)}" class="l-conn"/>` +
    `<polyline points="${pts("msgs", maxM)}" class="l-msg"/>` +
    `<text x="2" y="10" class="t-conn">${maxC}</text><text x="${W - 2}" y="10" class="t-msg" text-anchor="end">${maxM}/s</text>`;
}

const MAX_ROWS = 500;
function showEvent(e) {
  const tb = $("stream").tBodies[0];
  const tr = document.createElement("tr");
  tr.className = "k-" + e.kind;
  tr.dataset.kind = e.kind;
  tr.dataset.channel = e.channel || "";
  tr.dataset.event = e.event || "";
  const cells = [new Date(e.t).toLocaleTimeString([], { hour12: false }) + "." + String(e.t % 1000).padStart(3, "0"),
    e.kind.replace("_", " ") + (e.code ? " " + e.code : ""), e.socket_id || "", e.channel || "", e.event || "",
    [e.data, e.detail].filter(Boolean).join("  ")];
  for (const c of cells) tr.insertCell().textContent = c;
  tr.hidden = !matches(tr);
  tb.prepend(tr);
  while (tb.rows.length > MAX_ROWS) tb.deleteRow(-1);
}

function matches(tr) {
  const ch = $("filter-channel").value.trim(), ev = $("filter-event").value.trim();
  return (!ch || tr.dataset.channel.includes(ch)) && (!ev || tr.dataset.event.includes(ev));
}
for (const id of ["filter-channel", "filter-event"]) {
  $(id).addEventListener("input", () => { for (const tr of $("stream").tBodies[0].rows) tr.hidden = !matches(tr); });
}
$("clear").addEventListener("click", () => { $("stream").tBodies[0].innerHTML = ""; skipped = 0; $("skipped").textContent = ""; });

// ---- The event creator: a trigger through the HTTP API's events route,
// signed with the secret (POST /apps/{id}/events, as an SDK would), or
// with the token (POST /console/apps/{id}/events, the same handler).

$("creator").addEventListener("submit", async e => {
  e.preventDefault();
  const id = $("app-pick").value;
  const body = JSON.stringify({ name: $("ev-name").value, channel: $("ev-channel").value, data: $("ev-data").value });
  const url = session.mode === "token" ? base + "/apps/" + encodeURIComponent(id) + "/events"
    : signedURL("POST", apiBase + "/apps/" + encodeURIComponent(id) + "/events", session.key, session.secret, body);
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...tokenHeaders() }, body });
  const text = await r.text();
  $("ev-result").textContent = r.status + " " + text;
});

// Back after a reload of the page, within the tab.
const saved = sessionStorage.getItem("revurb-console");
if (saved) login(JSON.parse(saved));
