// xae latent explorer: a hierarchy's panel. The map is the top group's; each latent the page
// decodes is completed with the groups below (xae/explore/hierarchy.py): drawn down the prior
// by the run's descend.onnx, or the picked test point's own lower groups. Methods of Panel.
'use strict';

const HierarchyMethods = {

  setupHierarchy(el) {
    const h = this.run.hierarchy, low = this.run.latent_dim - h.top;
    el.hidden = false;
    this.lowerMode = 'prior';
    this.noise = Float32Array.from(normals(low));
    const note = el.querySelector('.hier-note'), post = el.querySelector('.lower-posterior');
    const prior = el.querySelector('.lower-prior');
    prior.name = post.name = `lower-${this.run.index}`;
    this.hierNote = () => {
      note.textContent = this.lowerMode === 'prior'
        ? `The ${h.groups - 1} groups below the top (${low} numbers) are drawn down the ` +
          'hierarchy from p(z_l | z_<l) given the group above, with noise kept until you draw again.'
        : `The groups below the top are test point ${this.ellipse.index}'s posterior means (each ` +
          'given its own groups above): change the top group and keep the rest of this image.';
    };
    const redecode = () => { this.hierNote(); if (this.cursor) { this.pending = { ...this.cursor, t0: performance.now() }; this.pump(); } };
    prior.addEventListener('change', () => { this.lowerMode = 'prior'; redecode(); });
    post.addEventListener('change', () => { this.lowerMode = 'posterior'; redecode(); });
    el.querySelector('.redraw').addEventListener('click', () => {
      this.noise = Float32Array.from(normals(low)); redecode();
    });
    this.hierNote();
  },

  // the picked test point is gone (Escape): the posterior option goes with it
  dropPicked() {
    this.ellipse = null;
    this.el.querySelector('.posterior').hidden = true;
    if (!this.hier) return;
    const el = this.el.querySelector('.hier');
    el.querySelector('.lower-posterior').disabled = true;
    el.querySelector('.lower-prior').checked = true;
    this.lowerMode = 'prior';
    this.hierNote();
  },

  // n map latents (n·dim) as codes the decoder reads (n·D): as they are, or for a hierarchy
  // with the groups below the top completed (see setupHierarchy)
  async complete(z, n) {
    if (!this.hier) return z;
    const top = this.dim, d = this.run.latent_dim, low = d - top, out = new Float32Array(n * d);
    const i = this.lowerMode === 'posterior' ? this.ellipse.index : -1;
    const below = i >= 0 ? this.hier.lower.subarray(i * low, (i + 1) * low) : this.noise;
    for (let k = 0; k < n; k++) {
      out.set(z.subarray(k * top, (k + 1) * top), k * d);
      out.set(below, k * d + top);
    }
    return i >= 0 ? out : Float32Array.from(await this.hier.graph.run(out, n));
  },

  async decodeMap(z, n) { return this.decoder.decode(await this.complete(z, n), n); },

};
