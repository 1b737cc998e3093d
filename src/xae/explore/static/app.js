// xae latent explorer: the page. It reads runs.json (written by `xae explore`), draws each
// run's latent map, and decodes latents with the run's ONNX decoder in onnxruntime-web (or,
// when the runtime is missing, through the server's decode endpoint).
// window.xae exposes the state the tests and benchmarks read (ready, latencies, panels, decode).
'use strict';

// latencies: from an input event's timestamp to the decoded image drawn on its canvas;
// frameLatencies: to the first animation frame after that draw.
// encodeLatencies: from a pointer event on a drawing pad to the drawn input placed on the map
// and its reconstruction drawn.
const xae = (window.xae = { ready: false, error: null, latencies: [], frameLatencies: [],
  encodeLatencies: [], panels: [] });
const MAP_SIZE = 480;
const CELL = 192; // decoded image size in CSS pixels
const STRIP_STEPS = 10;
const GRID = 4; // prior samples: GRID × GRID
const POSTERIOR_DRAWS = 8; // z ~ q(z|x) drawn for a clicked test point
const NEAR = 6; // a click within this many pixels of a test point picks it
const POSTERIOR_COLOUR = '#EE7733'; // the ellipses and their draws (Tol's vibrant orange)
// label colours that stay apart under protan-, deutan- and tritanopia (Paul Tol's "muted"
// scheme, with black as a tenth); tests/test_explore_palette.py checks them
const PALETTE = ['#332288', '#88CCEE', '#44AA99', '#117733', '#999933', '#DDCC77', '#CC6677',
  '#882255', '#AA4499', '#000000'];

function setStatus(text, error = false) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.classList.toggle('error', error);
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(s);
  });
}

async function fetchOk(url, init) {
  const r = await fetch(url, init);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(`${url}: ${msg}`);
  }
  return r;
}

// ---- decoding: one interface over onnxruntime-web and the server's endpoint ----------------

// An ONNX graph of one input and one output run by onnxruntime-web on n samples of the
// per-sample input shape: the decoder ([D]) and the encoder (the data's shape).
class OrtGraph {
  static async create(url, shape) {
    const session = await ort.InferenceSession.create(url, {
      executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return new OrtGraph(session, shape);
  }
  constructor(session, shape) {
    this.session = session; this.shape = shape; this.via = 'browser';
    this.input = session.inputNames[0]; this.output = session.outputNames[0];
  }
  async run(data, n) { // Float32Array (n·input size) → Float32Array (n·output size)
    const feeds = { [this.input]: new ort.Tensor('float32', data, [n, ...this.shape]) };
    const out = await this.session.run(feeds);
    return out[this.output].data;
  }
  decode(z, n) { return this.run(z, n); } // the decoders' interface (ServerDecoder's too)
}

class ServerDecoder {
  constructor(endpoint, index, dim) {
    this.endpoint = endpoint; this.index = index; this.dim = dim; this.via = 'server';
  }
  async decode(z, n) {
    const rows = [];
    for (let i = 0; i < n; i++) rows.push(Array.from(z.subarray(i * this.dim, (i + 1) * this.dim)));
    const r = await fetchOk(this.endpoint, { method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ run: this.index, z: rows }) });
    return Float32Array.from((await r.json()).x);
  }
}

// ---- drawing decoded samples -----------------------------------------------------------------

// Draws sample k of the flat batch x (data_shape per sample) into a w×h box of ctx at (dx, dy).
class Painter {
  constructor(shape) {
    this.shape = shape;
    this.image = shape.length === 3 && (shape[0] === 1 || shape[0] === 3);
    this.size = shape.reduce((a, b) => a * b, 1);
    if (this.image) {
      const [, h, w] = shape;
      this.tile = document.createElement('canvas');
      this.tile.width = w; this.tile.height = h;
      this.tileCtx = this.tile.getContext('2d');
      this.pixels = this.tileCtx.createImageData(w, h);
    }
  }
  draw(ctx, x, k, dx, dy, w, h) {
    const off = k * this.size;
    if (!this.image) return this.drawVector(ctx, x, off, dx, dy, w, h);
    const [c, hh, ww] = this.shape, plane = hh * ww, px = this.pixels.data;
    for (let i = 0; i < plane; i++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = x[off + (c === 3 ? ch * plane : 0) + i];
        px[4 * i + ch] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
      }
      px[4 * i + 3] = 255;
    }
    this.tileCtx.putImageData(this.pixels, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.tile, dx, dy, w, h);
  }
  drawVector(ctx, x, off, dx, dy, w, h) { // a bar per coordinate, scaled to the largest |x|
    let m = 1e-12;
    for (let i = 0; i < this.size; i++) m = Math.max(m, Math.abs(x[off + i]));
    ctx.fillStyle = '#111'; ctx.fillRect(dx, dy, w, h);
    ctx.fillStyle = '#9cf';
    const bw = w / this.size, mid = dy + h / 2;
    for (let i = 0; i < this.size; i++) {
      const v = (x[off + i] / m) * (h / 2 - 2);
      ctx.fillRect(dx + i * bw, Math.min(mid, mid - v), Math.max(1, bw - 1), Math.abs(v));
    }
  }
}

function sizedCanvas(canvas, w, h) {
  const r = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * r); canvas.height = Math.round(h * r);
  canvas.style.width = `${w}px`; canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(r, 0, 0, r, 0, 0);
  return ctx;
}

// ---- latent geometry -------------------------------------------------------------------------

function latentOf(plane, u, v) { // z = mean + u·b1 + v·b2
  const d = plane.mean.length, z = new Float32Array(d);
  for (let i = 0; i < d; i++) z[i] = plane.mean[i] + u * plane.basis[0][i] + v * plane.basis[1][i];
  return z;
}

function coordsOf(plane, z) { // (u, v): z projected onto the plane (an orthonormal basis)
  let u = 0, v = 0;
  for (let i = 0; i < z.length; i++) {
    const c = z[i] - plane.mean[i];
    u += c * plane.basis[0][i]; v += c * plane.basis[1][i];
  }
  return [u, v];
}

function interpolate(a, b, steps, spherical) {
  const d = a.length, out = new Float32Array(steps * d);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < d; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  const omega = Math.acos(Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb || 1))));
  const slerp = spherical && Math.sin(omega) > 1e-6;
  for (let s = 0; s < steps; s++) {
    const t = s / (steps - 1);
    const wa = slerp ? Math.sin((1 - t) * omega) / Math.sin(omega) : 1 - t;
    const wb = slerp ? Math.sin(t * omega) / Math.sin(omega) : t;
    for (let i = 0; i < d; i++) out[s * d + i] = wa * a[i] + wb * b[i];
  }
  return out;
}

function fmt(v) {
  if (typeof v !== 'number') return '–';
  return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3);
}

// ---- one run's panel -------------------------------------------------------------------------

class Panel {
  constructor(run, decoder, points, prior, posterior, encoder, hier) {
    this.run = run; this.decoder = decoder; this.points = points; this.prior = prior;
    this.posterior = posterior; this.encoder = encoder; // null: none (why in run.posterior)
    this.hier = hier; // a hierarchy: { graph: descend.onnx, lower: the test points' lower groups }
    this.dim = run.map_dim; // the size of the map's latents: the top group's in a hierarchy
    this.n = points.length / 3;
    this.painter = new Painter(run.data_shape);
    this.pins = []; this.pending = null; this.busy = false;
    this.frames = { hover: 0, strip: 0, samples: 0, posterior: 0, drawn: 0, scored: 0,
      refused: 0 };
    this.pointsDrawn = 0;
    const el = document.getElementById('panel-template').content.firstElementChild.cloneNode(true);
    this.el = el;
    el.dataset.run = String(run.index);
    const q = (s) => el.querySelector(s);
    this.canvas = { points: q('.map-points'), overlay: q('.map-overlay'), decoded: q('.decoded'),
      linear: q('.strip-linear'), slerp: q('.strip-slerp'), grid: q('.sample-grid'),
      postStrip: q('.post-strip'), pad: q('.pad'), drawRecon: q('.draw-recon') };
    q('.run-name').textContent = run.name;
    this.fillStats(q('.stats'));
    q('.plane-note').textContent = this.planeNote();
    q('.slerp').hidden = !run.stochastic;
    this.where = q('.where');
    this.ctx = { points: sizedCanvas(this.canvas.points, MAP_SIZE, MAP_SIZE),
      overlay: sizedCanvas(this.canvas.overlay, MAP_SIZE, MAP_SIZE),
      decoded: sizedCanvas(this.canvas.decoded, CELL, CELL) };
    this.fillLegend(q('.legend'));
    this.attributes(q('.attribute'));
    this.setupPad(q('.draw'));
    if (hier) this.setupHierarchy(q('.hier'));
    this.resetView();
    this.listen();
    q('.sample').addEventListener('click', () => this.samples().catch(fail));
    q('.clear-pins').addEventListener('click', () => { this.pins = []; this.drawOverlay(); q('.strips').hidden = true; });
    q('.reset-view').addEventListener('click', () => { this.resetView(); this.drawPoints(); this.drawOverlay(); });
    q('.screenshot').addEventListener('click', () => this.screenshot());
  }

  // the current view as a PNG download: the map (points, pins, cursor) with the decoded image
  // beside it, at the canvases' own resolution; returns the composed canvas
  screenshot() {
    const map = this.canvas.points, gap = Math.round(8 * (window.devicePixelRatio || 1));
    const out = document.createElement('canvas');
    out.width = map.width + gap + this.canvas.decoded.width;
    out.height = Math.max(map.height, this.canvas.decoded.height);
    const ctx = out.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(map, 0, 0); ctx.drawImage(this.canvas.overlay, 0, 0);
    ctx.drawImage(this.canvas.decoded, map.width + gap, 0);
    const a = document.createElement('a');
    a.download = `xae-${this.run.name}.png`; a.href = out.toDataURL('image/png'); a.click();
    this.frames.screenshot = (this.frames.screenshot || 0) + 1;
    return out;
  }

  fillStats(dl) {
    const s = this.run.stats;
    const items = [['preset', s.preset], ['β', fmt(s.beta)], ['rate', fmt(s.rate)],
      ['distortion', fmt(s.distortion)],
      ['−ELBO', this.run.no_elbo ? 'none: ' + this.run.no_elbo : fmt(s.neg_elbo)],
      ['NLL', s.nll_iw === undefined ? 'not evaluated' : fmt(s.nll_iw)],
      ['latent', `${this.run.latent_dim}-d ${this.run.bottleneck}` + (this.run.hierarchy
        ? ` in ${this.run.hierarchy.groups} groups (top ${this.run.hierarchy.top}-d)` : '') +
        `, ${this.run.prior_kind} prior`],
      ['samples', `${this.run.prior.sampler.kind === 'bank' ? 'a fixed bank' : 'fresh'} from ` +
        this.run.prior.about]];
    for (const [k, v] of items) {
      const dt = document.createElement('dt'), dd = document.createElement('dd');
      dt.textContent = k; dd.textContent = v ?? '–';
      dl.append(dt, dd);
    }
    dl.title = s.source ? `nats per example on the test set, from ${s.source}` +
      (s.nll_iw === undefined ? '; run `xae eval RUN` for the NLL' : '') : 'no metrics found';
  }

  planeNote() {
    const r = this.run, p = r.plane, d = this.dim;
    let text;
    if (p.pca) {
      const pct = p.explained.map((e) => `${(100 * e).toFixed(1)}%`).join(' and ');
      text = `The latent has ${d} dimensions. The map is the plane through the mean of the ` +
        `test set's latent means, spanned by their first two principal components (${pct} of ` +
        'their variance); points are projected onto it, and the cursor decodes points of that plane.';
    } else if (d === 2) {
      text = 'The latent has 2 dimensions: the map is the latent plane itself.';
    } else {
      text = 'The latent has 1 dimension: the horizontal axis is z; the vertical one is not used.';
    }
    if (r.hierarchy) {
      text = `The code is a hierarchy of ${r.hierarchy.groups} groups (${r.latent_dim} numbers); ` +
        `the map shows the top group alone. ${text.replace('The latent has', 'The top group has')}`;
    }
    if (p.aligned) text += ' The map is turned (rotated or mirrored, never stretched) to match the previous run of the sweep.';
    if (r.discrete) text += ' The bottleneck is discrete: points between codes are decoded as they are, not quantized.';
    const colour = r.map.labels ? ', coloured by label' : '';
    return `${text} ${this.n} test points${colour}. Move to decode, click to pin, ` +
      'drag to pan, wheel to zoom.';
  }

  fillLegend(el) {
    if (!this.run.map.labels) return;
    const seen = new Set();
    for (let i = 0; i < this.n; i++) seen.add(this.points[3 * i + 2]);
    for (const l of [...seen].sort((a, b) => a - b)) {
      const span = document.createElement('span');
      span.innerHTML = `<i style="background:${PALETTE[l % PALETTE.length]}"></i>${l}`;
      el.append(span);
    }
  }

  // The attribute slider: the cursor's latent moves by amount · direction before decoding;
  // moving the slider decodes the last cursor point again.
  attributes(el) {
    const attrs = this.run.attributes || [];
    const select = el.querySelector('.attr-select'), range = el.querySelector('.attr-amount');
    const shown = el.querySelector('.attr-value');
    this.shift = { direction: null, amount: 0 };
    el.querySelector('.attr-note').textContent = attrs.length
      ? 'moves the cursor\'s latent along the direction from one group\'s mean latent to ' +
        'the other\'s (amounts in lengths of that difference)'
      : this.run.attributes_missing || 'no attribute directions';
    select.disabled = range.disabled = !attrs.length;
    attrs.forEach((a, i) => select.add(new Option(a.name, String(i))));
    const update = () => {
      const a = attrs[Number(select.value)];
      this.shift = { direction: a ? a.direction : null, amount: Number(range.value) };
      shown.textContent = range.value;
      if (this.cursor) { this.pending = { ...this.cursor, t0: performance.now() }; this.pump(); }
    };
    select.addEventListener('change', update);
    range.addEventListener('input', update);
    update();
  }

  latentAt(u, v) { // the plane point, moved along the attribute direction
    const z = latentOf(this.run.plane, u, v), { direction, amount } = this.shift;
    if (direction && amount) for (let i = 0; i < z.length; i++) z[i] += amount * direction[i];
    return z;
  }

  // view: screen = centre + (data − origin)·scale, with y up
  resetView() {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < this.n; i++) {
      const u = this.points[3 * i], v = this.points[3 * i + 1];
      x0 = Math.min(x0, u); x1 = Math.max(x1, u); y0 = Math.min(y0, v); y1 = Math.max(y1, v);
    }
    if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    this.view = { ox: (x0 + x1) / 2, oy: (y0 + y1) / 2,
      scale: (0.9 * MAP_SIZE) / Math.max(x1 - x0, y1 - y0) };
  }
  toScreen(u, v) {
    const w = this.view;
    return [MAP_SIZE / 2 + (u - w.ox) * w.scale, MAP_SIZE / 2 - (v - w.oy) * w.scale];
  }
  toData(sx, sy) {
    const w = this.view;
    return [w.ox + (sx - MAP_SIZE / 2) / w.scale, w.oy - (sy - MAP_SIZE / 2) / w.scale];
  }

  drawPoints() {
    const ctx = this.ctx.points, labels = this.run.map.labels;
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, MAP_SIZE, MAP_SIZE);
    const r = this.n > 5000 ? 1.5 : 2.5;
    let drawn = 0;
    for (let i = 0; i < this.n; i++) {
      const [x, y] = this.toScreen(this.points[3 * i], this.points[3 * i + 1]);
      if (x < -r || y < -r || x > MAP_SIZE + r || y > MAP_SIZE + r) continue;
      ctx.fillStyle = labels ? PALETTE[this.points[3 * i + 2] % PALETTE.length] : '#555';
      ctx.fillRect(x - r, y - r, 2 * r, 2 * r);
      drawn++;
    }
    this.pointsDrawn = drawn;
  }

  drawOverlay(cursor) {
    const ctx = this.ctx.overlay;
    ctx.clearRect(0, 0, MAP_SIZE, MAP_SIZE);
    const pts = this.pins.map((p) => this.toScreen(p.u, p.v));
    if (pts.length === 2) {
      ctx.strokeStyle = '#000'; ctx.setLineDash([4, 4]); ctx.beginPath();
      ctx.moveTo(...pts[0]); ctx.lineTo(...pts[1]); ctx.stroke(); ctx.setLineDash([]);
    }
    pts.forEach(([x, y], i) => {
      ctx.fillStyle = '#000'; ctx.beginPath(); ctx.arc(x, y, 7, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = '#fff'; ctx.font = 'bold 10px sans-serif'; ctx.textAlign = 'center';
      ctx.textBaseline = 'middle'; ctx.fillText('AB'[i], x, y);
    });
    this.drawPosterior(ctx);
    if (this.drawn) { // the user's own input: a diamond
      const [x, y] = this.toScreen(this.drawn.u, this.drawn.v);
      ctx.fillStyle = DRAWN_COLOUR; ctx.strokeStyle = '#000'; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x, y - 8); ctx.lineTo(x + 8, y); ctx.lineTo(x, y + 8);
      ctx.lineTo(x - 8, y); ctx.closePath(); ctx.fill(); ctx.stroke();
    }
    if (cursor) {
      ctx.strokeStyle = '#d00'; ctx.lineWidth = 1.5; ctx.beginPath();
      ctx.arc(cursor[0], cursor[1], 5, 0, 2 * Math.PI); ctx.stroke();
    }
    this.lastCursor = cursor;
  }

  // q(z|x) of the picked test point: its 1σ (solid) and 2σ (dashed) ellipses on the plane and
  // its draws as dots; a single square where the code is a point
  drawPosterior(ctx) {
    const e = this.ellipse;
    if (!e) return;
    const [cx, cy] = this.toScreen(...e.centre), s = this.view.scale;
    ctx.strokeStyle = POSTERIOR_COLOUR; ctx.fillStyle = POSTERIOR_COLOUR; ctx.lineWidth = 2;
    if (!e.radii) {
      ctx.fillRect(cx - 5, cy - 5, 10, 10); ctx.strokeStyle = '#000'; ctx.lineWidth = 1;
      ctx.strokeRect(cx - 5, cy - 5, 10, 10);
      return;
    }
    for (const k of [1, 2]) { // screen y points down: the angle turns the other way
      ctx.setLineDash(k === 2 ? [6, 4] : []); ctx.beginPath();
      ctx.ellipse(cx, cy, Math.max(0.5, k * e.radii[0] * s), Math.max(0.5, k * e.radii[1] * s),
        -e.angle, 0, 2 * Math.PI);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    for (const [u, v] of e.dots) {
      const [x, y] = this.toScreen(u, v);
      ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill();
    }
  }

  // the test point nearest the screen point (sx, sy), if within ``radius`` pixels, else −1
  nearest(sx, sy, radius = NEAR) {
    let best = -1, bestD = radius * radius;
    for (let i = 0; i < this.n; i++) {
      const [x, y] = this.toScreen(this.points[3 * i], this.points[3 * i + 1]);
      const d = (x - sx) ** 2 + (y - sy) ** 2;
      if (d <= bestD) { best = i; bestD = d; }
    }
    return best;
  }

  // Test point i's posterior N(μ, diag σ²): its projection onto the plane, N(B(μ − m), C) with
  // C = B diag(σ²) Bᵀ, drawn as ellipses along C's eigenvectors (radii √λ at 1σ); draws
  // z = μ + σ·ε in all D dimensions, decoded in a strip after the reconstruction (z = μ).
  async showPosterior(i) {
    const d = this.dim, box = this.el.querySelector('.posterior');
    const note = box.querySelector('.post-note');
    box.hidden = false;
    box.querySelector('.post-index').textContent = String(i);
    if (!this.posterior) {
      this.ellipse = { index: i, centre: [this.points[3 * i], this.points[3 * i + 1]] };
      note.textContent = `A single point: ${this.run.posterior.why}.`;
      this.canvas.postStrip.hidden = true;
      this.drawOverlay(this.lastCursor);
      this.frames.posterior++;
      return;
    }
    const mu = this.posterior.subarray(2 * i * d, (2 * i + 1) * d);
    const sd = this.posterior.subarray((2 * i + 1) * d, (2 * i + 2) * d);
    const [b1, b2] = this.run.plane.basis;
    let a = 0, b = 0, c = 0; // C = [[a, b], [b, c]]
    for (let j = 0; j < d; j++) {
      const v = sd[j] * sd[j];
      a += b1[j] * b1[j] * v; b += b1[j] * b2[j] * v; c += b2[j] * b2[j] * v;
    }
    const mid = (a + c) / 2, half = Math.hypot((a - c) / 2, b);
    const z = new Float32Array((POSTERIOR_DRAWS + 1) * d), eps = normals(POSTERIOR_DRAWS * d);
    z.set(mu, 0);
    for (let k = 0; k < POSTERIOR_DRAWS * d; k++) z[d + k] = mu[k % d] + sd[k % d] * eps[k];
    const dots = [];
    for (let k = 1; k <= POSTERIOR_DRAWS; k++) dots.push(coordsOf(this.run.plane, z.subarray(k * d, (k + 1) * d)));
    this.ellipse = { index: i, centre: coordsOf(this.run.plane, mu), cov: [[a, b], [b, c]],
      radii: [Math.sqrt(mid + half), Math.sqrt(Math.max(0, mid - half))],
      angle: 0.5 * Math.atan2(2 * b, a - c), dots, z };
    // zoom out (about the view's centre) until the 2σ ellipse is inside the map
    const w = this.view, [cu, cv] = this.ellipse.centre;
    const reach = Math.max(Math.abs(cu - w.ox) + 2 * Math.sqrt(a), Math.abs(cv - w.oy) + 2 * Math.sqrt(c));
    const zoomed = reach * w.scale > 0.47 * MAP_SIZE;
    if (zoomed) { w.scale = (0.47 * MAP_SIZE) / reach; this.drawPoints(); }
    note.textContent = 'The encoder maps x to a distribution q(z|x) = N(μ, diag σ²): the solid ' +
      'and dashed ellipses hold its 1σ and 2σ on the map\'s plane, the dots are ' +
      `${POSTERIOR_DRAWS} draws z ~ q(z|x). Below, the reconstruction (decoded at μ) and ` +
      'the draws decoded: what the decoder was trained to read for this x.' +
      (zoomed ? ' (The map zoomed out to show the whole 2σ ellipse.)' : '');
    this.drawOverlay(this.lastCursor);
    if (this.hier) {
      this.el.querySelector('.lower-posterior').disabled = false;
      this.hierNote();
    }
    const x = await this.decodeMap(z, POSTERIOR_DRAWS + 1);
    const size = Math.floor(MAP_SIZE / (POSTERIOR_DRAWS + 2));
    const ctx = sizedCanvas(this.canvas.postStrip, (POSTERIOR_DRAWS + 1) * size + 6, size);
    for (let k = 0; k <= POSTERIOR_DRAWS; k++) {
      this.painter.draw(ctx, x, k, k * size + (k ? 6 : 0), 0, size - 1, size - 1);
    }
    this.canvas.postStrip.hidden = false;
    this.frames.posterior++;
  }

  listen() {
    const c = this.canvas.overlay;
    let drag = null;
    c.addEventListener('mousedown', (e) => { drag = { x: e.offsetX, y: e.offsetY, moved: false, view: { ...this.view } }; });
    // pointerrawupdate (where the browser has it) is dispatched as soon as the input arrives;
    // mousemove waits for the next animation frame, up to 16 ms later.
    const move = 'onpointerrawupdate' in window ? 'pointerrawupdate' : 'mousemove';
    c.addEventListener(move, (e) => {
      if (drag && (e.buttons & 1)) {
        const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
        if (drag.moved || Math.hypot(dx, dy) > 3) {
          drag.moved = true;
          this.view.ox = drag.view.ox - dx / this.view.scale;
          this.view.oy = drag.view.oy + dy / this.view.scale;
          this.drawPoints();
        }
      }
      this.hover(e.offsetX, e.offsetY, e.timeStamp);
      if (e.ctrlKey || e.metaKey) { // hovering a test point with Ctrl (⌘) held shows its q(z|x)
        const i = this.nearest(e.offsetX, e.offsetY);
        if (i >= 0 && (!this.ellipse || this.ellipse.index !== i)) this.showPosterior(i).catch(fail);
      }
    });
    c.addEventListener('mouseup', (e) => {
      if (drag && !drag.moved) this.click(e.offsetX, e.offsetY);
      drag = null;
    });
    c.addEventListener('mouseleave', () => { drag = null; this.drawOverlay(); });
    c.addEventListener('keydown', (e) => { if (this.key(e)) e.preventDefault(); });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const [u, v] = this.toData(e.offsetX, e.offsetY);
      this.view.scale *= Math.exp(-e.deltaY * 0.0015);
      const [u2, v2] = this.toData(e.offsetX, e.offsetY); // keep the point under the cursor
      this.view.ox += u - u2; this.view.oy += v - v2;
      this.drawPoints(); this.drawOverlay([e.offsetX, e.offsetY]);
    }, { passive: false });
  }

  // The keyboard, with the map focused: arrows move a cursor that decodes (Shift: 4× the
  // step), Enter or Space pins its point, a / b jump to pin A / B, Backspace or Delete drops
  // the newest pin, Escape drops them all. Returns whether the key was one of these.
  key(e) {
    const at = this.keyCursor || [MAP_SIZE / 2, MAP_SIZE / 2];
    const step = e.shiftKey ? 32 : 8, inside = (t) => Math.min(MAP_SIZE - 1, Math.max(0, t));
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step],
      ArrowDown: [0, step] };
    if (e.key in moves) {
      this.keyCursor = [inside(at[0] + moves[e.key][0]), inside(at[1] + moves[e.key][1])];
      this.hover(...this.keyCursor, e.timeStamp);
    } else if (e.key === 'Enter' || e.key === ' ') {
      this.keyCursor = at;
      this.click(...at);
    } else if ((e.key === 'a' || e.key === 'b') && this.pins['ab'.indexOf(e.key)]) {
      const p = this.pins['ab'.indexOf(e.key)];
      this.keyCursor = this.toScreen(p.u, p.v);
      this.hover(...this.keyCursor, e.timeStamp);
    } else if (e.key === 'Backspace' || e.key === 'Delete' || e.key === 'Escape') {
      this.pins = e.key === 'Escape' ? [] : this.pins.slice(0, -1);
      if (e.key === 'Escape') this.dropPicked();
      this.el.querySelector('.strips').hidden = true;
      this.drawOverlay(at);
    } else {
      return false;
    }
    return true;
  }

  // a click (or Enter) pins the point, and shows the posterior of a test point under it
  click(sx, sy) {
    const i = this.nearest(sx, sy);
    this.pin(...this.toData(sx, sy)).catch(fail);
    if (i >= 0) this.showPosterior(i).catch(fail);
  }

  // The newest cursor position wins: while a decode runs, later moves replace each other.
  hover(sx, sy, t0) {
    const [u, v] = this.toData(sx, sy);
    this.cursor = { u, v };
    this.pending = { u, v, t0 };
    this.drawOverlay([sx, sy]);
    this.pump();
    if (!xae.linked || !xae.linked()) return;
    const z = this.latentAt(u, v); // every other run shown with a code of this size decodes z
    for (const p of xae.panels) {
      if (p !== this && !p.el.hidden && p.dim === z.length) p.follow(z, t0);
    }
  }

  // decode a latent another run's cursor stands on, marked where it falls on this map
  follow(z, t0) {
    const [u, v] = coordsOf(this.run.plane, z);
    this.pending = { u, v, t0, z };
    this.drawOverlay(this.toScreen(u, v));
    this.pump();
  }

  async pump() {
    if (this.busy || !this.pending) return;
    const { u, v, t0, z: given } = this.pending;
    this.pending = null; this.busy = true;
    try {
      const z = given || this.latentAt(u, v);
      this.lastZ = z;
      const x = await this.decodeMap(z, 1);
      this.painter.draw(this.ctx.decoded, x, 0, 0, 0, CELL, CELL);
      const t1 = performance.now();
      this.frames.hover++;
      this.canvas.decoded.dataset.frame = String(this.frames.hover);
      xae.latencies.push(t1 - t0);
      requestAnimationFrame(() => xae.frameLatencies.push(performance.now() - t0));
      this.where.textContent = `u ${u.toFixed(3)}, v ${v.toFixed(3)}\nz = [${Array.from(z.slice(0, 6), (a) => a.toFixed(2)).join(', ')}${z.length > 6 ? ', …' : ''}]`;
    } catch (e) {
      fail(e);
    } finally {
      this.busy = false;
    }
    if (this.pending) this.pump();
  }

  async pin(u, v) {
    this.pins.push({ u, v, z: latentOf(this.run.plane, u, v) });
    if (this.pins.length > 2) this.pins.shift();
    this.drawOverlay();
    if (this.pins.length === 2) await this.strips();
  }

  async strips() {
    const [a, b] = this.pins.map((p) => p.z);
    const kinds = this.run.stochastic ? [['linear', false], ['slerp', true]] : [['linear', false]];
    const ps = this.painter, size = MAP_SIZE / STRIP_STEPS;
    for (const [name, spherical] of kinds) {
      const x = await this.decodeMap(interpolate(a, b, STRIP_STEPS, spherical), STRIP_STEPS);
      const ctx = sizedCanvas(this.canvas[name], STRIP_STEPS * size, size);
      for (let s = 0; s < STRIP_STEPS; s++) ps.draw(ctx, x, s, s * size, 0, size - 1, size - 1);
    }
    this.el.querySelector('.strips').hidden = false;
    this.frames.strip++;
    this.canvas.linear.dataset.frame = String(this.frames.strip);
  }

  // this.prior: the run's PriorSampler (priors.js), fresh draws or rows of the fixed bank
  async samples() {
    const k = GRID * GRID, p = this.prior, about = this.run.prior.about;
    const z = await p.sample(k);
    this.lastSamples = z;
    const x = await this.decoder.decode(z, k);
    const size = Math.floor(CELL * 1.5 / GRID);
    const ctx = sizedCanvas(this.canvas.grid, GRID * size, GRID * size);
    for (let i = 0; i < k; i++) {
      this.painter.draw(ctx, x, i, (i % GRID) * size, Math.floor(i / GRID) * size, size - 1, size - 1);
    }
    this.el.querySelector('.samples h3').textContent = p.fresh ? `fresh samples from ${about}`
      : `samples from a fixed bank of ${this.run.prior.draws} draws from ${about}, made when ` +
        `the explorer started: ${p.why}`;
    this.el.querySelector('.samples').hidden = false;
    this.frames.samples++;
    this.canvas.grid.dataset.frame = String(this.frames.samples);
  }
}
// the drawing pad (pad.js) and a hierarchy's completion (hierarchy.js), loaded before this file
Object.assign(Panel.prototype, PadMethods, HierarchyMethods);

function fail(e) {
  console.error(e);
  xae.error = String(e && e.message ? e.message : e);
  setStatus(`error: ${xae.error}`, true);
}

// ---- the page --------------------------------------------------------------------------------

async function floats(url) {
  return new Float32Array(await (await fetchOk(url)).arrayBuffer());
}

function layout(panels) {
  const select = document.getElementById('run-select');
  const side = document.getElementById('side-by-side');
  const link = document.getElementById('link-cursors');
  const main = document.getElementById('panels');
  let current = 0; // the run shown alone; −1: none (a sweep's failed member)
  const show = () => {
    main.classList.toggle('side-by-side', side.checked);
    panels.forEach((p, i) => { p.el.hidden = !side.checked && i !== current; });
    select.disabled = side.checked;
    link.disabled = !side.checked;
  };
  xae.linked = () => side.checked && link.checked;
  xae.showRun = (i) => { current = i; if (i >= 0) select.value = String(i); show(); };
  xae.shown = () => panels.find((p) => !p.el.hidden) || null;
  panels.forEach((p, i) => select.add(new Option(`${p.run.name} (${p.run.stats.preset})`, String(i))));
  select.addEventListener('change', () => xae.showRun(Number(select.value)));
  side.addEventListener('change', show);
  document.getElementById('controls').hidden = panels.length < 2;
  show();
}

async function main() {
  const index = await (await fetchOk('runs.json')).json();
  xae.index = index;
  let note = '';
  if (index.runtime) {
    await loadScript(index.runtime);
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which static hosts lack
    ort.env.wasm.wasmPaths = new URL('vendor/', document.baseURI).href;
    note = 'decoding in the browser (onnxruntime-web)';
  } else if (index.decode_endpoint) {
    note = `decoding on the server: onnxruntime-web is not installed (${index.runtime_missing})`;
  } else {
    throw new Error('this folder has neither onnxruntime-web nor a server to decode with');
  }
  const panels = await Promise.all(index.runs.map(async (run) => {
    const decoder = index.runtime ? await OrtGraph.create(run.decoder, [run.latent_dim])
      : new ServerDecoder(index.decode_endpoint, run.index, run.latent_dim);
    const [points, bank] = await Promise.all([floats(run.map.file), floats(run.prior.file)]);
    const prior = await PriorSampler.create(run.prior.sampler, run.latent_dim, bank);
    const posterior = run.posterior.file ? await floats(run.posterior.file) : null;
    const encoder = index.runtime ? await OrtGraph.create(run.encoder, run.data_shape) : null;
    const hier = run.hierarchy ? { graph: await OrtGraph.create(run.hierarchy.descend,
      [run.latent_dim]), lower: await floats(run.hierarchy.lower) } : null;
    const panel = new Panel(run, decoder, points, prior, posterior, encoder, hier);
    await decoder.decode(new Float32Array(run.latent_dim), 1); // warm up before the first move
    return panel;
  }));
  const main = document.getElementById('panels');
  for (const p of panels) { main.append(p.el); p.drawPoints(); p.drawOverlay(); }
  xae.panels = panels;
  layout(panels);
  if (index.sweep) setupSweep(index.sweep, panels);
  xae.decoders = panels.map((p) => p.decoder);
  document.addEventListener('paste', (e) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith('image/')) || e.clipboardData.files[0];
    const p = panels.find((q) => !q.el.hidden && q.el.querySelector('.draw').open && q.padCtx);
    if (!file) return;
    e.preventDefault();
    if (!p) return setStatus('to paste an image, open "draw your own input" in a panel first', true);
    p.loadImage(file).catch(fail);
  });
  if (index.decode_endpoint) {
    xae.server = index.runs.map((r) => new ServerDecoder(index.decode_endpoint, r.index, r.latent_dim));
  }
  // decode(run, rows, via): rows of latents → flat Array of decoded values, for tests
  xae.decode = async (run, rows, via = 'page') => {
    const z = Float32Array.from(rows.flat());
    const dec = via === 'server' ? xae.server[run] : xae.decoders[run];
    return Array.from(await dec.decode(z, rows.length));
  };
  xae.via = panels.length ? panels[0].decoder.via : null;
  document.getElementById('tour-start').disabled = false;
  xae.readyMs = performance.now();
  xae.ready = true;
  document.body.dataset.ready = '1';
  setStatus(`${panels.length} run${panels.length > 1 ? 's' : ''}, ${note}; ready in ${Math.round(xae.readyMs)} ms`);
}

main().catch(fail);
