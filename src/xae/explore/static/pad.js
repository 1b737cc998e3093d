// xae latent explorer: your own input. A drawing pad (pointer events: mouse, pen and touch)
// that also takes an image dropped on it or pasted; the page shrinks it to the run's input
// size, encodes it with the run's encoder.onnx, places it on the map and draws its
// reconstruction; the live server adds its −ELBO and anomaly score. Methods of app.js's Panel.
'use strict';

const PAD = 160; // the drawing pad, CSS pixels
const DRAWN_COLOUR = '#EE3377'; // where the user's own input lands (Tol's vibrant magenta)

const PadMethods = {

  setupPad(el) {
    const note = el.querySelector('.draw-note');
    this.padNote = (text) => { note.textContent = text; };
    if (!this.painter.image) {
      el.querySelector('.draw-row').hidden = true;
      return this.padNote("this run's data are not images, so there is nothing to draw");
    }
    if (!this.encoder) {
      el.querySelector('.draw-row').hidden = true;
      return this.padNote('drawing needs onnxruntime-web to encode in the page: ' +
        (xae.index.runtime_missing || 'it is not installed'));
    }
    const pad = this.canvas.pad, [, h, w] = this.run.data_shape;
    this.padCtx = sizedCanvas(pad, PAD, PAD);
    this.ctx.drawRecon = sizedCanvas(this.canvas.drawRecon, 96, 96);
    this.small = Object.assign(document.createElement('canvas'), { width: w, height: h });
    this.clearPad();
    this.padNote(`Draw light on dark, as the training images are; it is shrunk to the run's ` +
      `${w}×${h} input and encoded here as you draw. Drop or paste an image to encode it.`);
    const ink = Math.max(10, (1.8 * PAD) / w); // strokes about two input pixels wide
    let last = null;
    const at = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    const stroke = (p) => {
      const ctx = this.padCtx;
      ctx.strokeStyle = ctx.fillStyle = '#fff'; ctx.lineWidth = ink; ctx.lineCap = 'round';
      ctx.beginPath();
      if (last) { ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke(); }
      else { ctx.arc(p[0], p[1], ink / 2, 0, 2 * Math.PI); ctx.fill(); }
      last = p;
    };
    pad.addEventListener('pointerdown', (e) => {
      e.preventDefault(); pad.setPointerCapture(e.pointerId); last = null;
      stroke(at(e)); this.encodeSoon(e.timeStamp, false);
    });
    // as on the map: pointerrawupdate comes as the input arrives, pointermove at the next frame
    pad.addEventListener('onpointerrawupdate' in window ? 'pointerrawupdate' : 'pointermove', (e) => {
      if (!pad.hasPointerCapture(e.pointerId)) return;
      stroke(at(e)); this.encodeSoon(e.timeStamp, false);
    });
    const end = (e) => {
      if (!pad.hasPointerCapture(e.pointerId)) return;
      pad.releasePointerCapture(e.pointerId); last = null; this.encodeSoon(e.timeStamp, true);
    };
    pad.addEventListener('pointerup', end);
    pad.addEventListener('pointercancel', end);
    pad.addEventListener('dragover', (e) => e.preventDefault());
    pad.addEventListener('drop', (e) => {
      e.preventDefault();
      this.loadImage(e.dataTransfer.files[0]).catch(fail);
    });
    el.querySelector('.clear-pad').addEventListener('click', () => {
      this.clearPad(); this.drawn = null; this.drawOverlay(this.lastCursor);
      el.querySelector('.draw-facts').textContent = '';
    });
    el.querySelector('.invert').addEventListener('change', (e) => this.encodeSoon(e.timeStamp, true));
  },

  clearPad() { this.padCtx.fillStyle = '#000'; this.padCtx.fillRect(0, 0, PAD, PAD); },

  // the pad as the run's input: shrunk to its size, values k/255 in [0, 1] (grey: the mean of
  // r, g, b rounded to 8 bits, so that input stays on the grid a discretized likelihood needs)
  padInput() {
    const [c, h, w] = this.run.data_shape, ctx = this.small.getContext('2d', { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(this.canvas.pad, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data, x = new Float32Array(c * h * w);
    const flip = this.el.querySelector('.invert').checked;
    for (let i = 0; i < h * w; i++) {
      for (let ch = 0; ch < c; ch++) {
        const v = (c === 1 ? Math.round((px[4 * i] + px[4 * i + 1] + px[4 * i + 2]) / 3) : px[4 * i + ch]) / 255;
        x[ch * h * w + i] = flip ? 1 - v : v;
      }
    }
    return x;
  },

  // the newest state of the pad wins: while an encode runs, later strokes replace each other
  encodeSoon(t0, score) {
    this.padPending = { t0, score: score || Boolean(this.padPending && this.padPending.score) };
    this.padPump().catch(fail);
  },

  async padPump() {
    if (this.padBusy || !this.padPending) return;
    const { t0, score } = this.padPending;
    this.padPending = null; this.padBusy = true;
    try {
      const x = this.padInput();
      const z = Float32Array.from(await this.encoder.run(x, 1));
      const [u, v] = coordsOf(this.run.plane, z.subarray(0, this.dim)); // a hierarchy: its top
      this.drawn = { x, z, u, v, score: null };
      this.drawOverlay(this.lastCursor);
      this.painter.draw(this.ctx.drawRecon, await this.decoder.decode(z, 1), 0, 0, 0, 96, 96);
      xae.encodeLatencies.push(performance.now() - t0);
      this.frames.drawn++;
      this.el.querySelector('.draw-facts').textContent = `lands at u ${u.toFixed(3)}, v ${v.toFixed(3)}`;
      if (score) await this.scoreDrawn(this.drawn);
    } finally {
      this.padBusy = false;
    }
    if (this.padPending) await this.padPump();
  },

  // −ELBO and anomaly score of the drawn input, from the live server's torch model
  async scoreDrawn(drawn) {
    const facts = this.el.querySelector('.draw-facts'), where = facts.textContent.split('\n')[0];
    if (!xae.index.score_endpoint) {
      facts.textContent = `${where}\n−ELBO and the anomaly score need the torch model: run ` +
        '`xae explore RUN` (this static copy has no server)';
      return;
    }
    const r = await fetchOk(xae.index.score_endpoint, { method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ run: this.run.index, x: Array.from(drawn.x) }) });
    const a = await r.json();
    if (drawn !== this.drawn) return; // the pad changed meanwhile; its own score follows
    drawn.score = a;
    const elbo = a.neg_elbo === null ? `−ELBO: none: ${a.no_elbo}` : `−ELBO ${fmt(a.neg_elbo)} nats (K = ${a.k})`;
    const unit = a.score === 'nll' ? 'nats, −log p(x) at K = ' + a.k : 'nats, −log p(x | z = f(x))';
    facts.textContent = `${where}\n${elbo}\nanomaly score (${a.score}, ${unit}): ${fmt(a.value)}, ` +
      `above ${a.percentile.toFixed(1)}% of the ${a.test_points} test points`;
    this.frames.scored++;
  },

  // an image dropped or pasted: drawn onto the pad (scaled to fit, keeping its shape), then
  // encoded; anything that is not a readable image is refused, saying so
  async loadImage(file) {
    const refuse = (text) => { this.padNote(text); this.frames.refused++; };
    if (!file) return refuse('nothing to read: drop or paste an image file');
    if (!file.type.startsWith('image/')) {
      return refuse(`${file.name || 'that'} is not an image (${file.type || 'unknown type'}); ` +
        'drop or paste a PNG, JPEG, GIF or WebP');
    }
    let img;
    try { img = await createImageBitmap(file); } catch (e) {
      return refuse(`${file.name || 'that file'} could not be read as an image (${e.message})`);
    }
    const [c, h, w] = this.run.data_shape, k = Math.min(PAD / img.width, PAD / img.height);
    this.clearPad();
    this.padCtx.imageSmoothingEnabled = img.width > w || img.height > h;
    this.padCtx.drawImage(img, (PAD - k * img.width) / 2, (PAD - k * img.height) / 2, k * img.width, k * img.height);
    const notes = [];
    if (img.width !== w || img.height !== h) {
      notes.push(`resized from ${img.width}×${img.height} to the run's ${w}×${h}` +
        (img.width * h !== img.height * w ? ', with black bars to keep its shape' : ''));
    }
    if (c === 1) {
      const probe = Object.assign(document.createElement('canvas'), { width: img.width, height: img.height });
      const pc = probe.getContext('2d', { willReadFrequently: true });
      pc.drawImage(img, 0, 0);
      const px = pc.getImageData(0, 0, img.width, img.height).data;
      for (let i = 0; i < px.length; i += 4) {
        if (Math.abs(px[i] - px[i + 1]) > 2 || Math.abs(px[i + 1] - px[i + 2]) > 2) { notes.push('converted to grey'); break; }
      }
    }
    this.padNote(`${file.name || 'the image'}: ${notes.length ? notes.join('; ') : 'used as it is'}`);
    this.encodeSoon(performance.now(), true);
  },

};
