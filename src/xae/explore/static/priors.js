// xae latent explorer: the page's prior samplers (runs.json's run.prior.sampler, written by
// xae/explore/priors.py). Each draws what model.sample_z draws, afresh per call: N(0, I), a
// mixture of diagonal Gaussians (the MoG prior, the VampPrior's encoder components), a flow's
// ONNX graph fed N(0, I) noise; or, where the page cannot draw that exactly, rows of the fixed
// bank of prior draws made when the explorer started (fresh = false, and `why` says why).
// Randomness comes from crypto.getRandomValues. PriorSampler.create(spec, dim, bank) picks one;
// each has fresh, why and sample(k) → Promise<Float32Array> of k·dim latents.
'use strict';

const RANDOM_CHUNK = 16384; // getRandomValues fills at most 65536 bytes per call

// n uniform doubles in (0, 1), each from 53 random bits
function uniforms(n) {
  const bits = new Uint32Array(2 * n);
  for (let i = 0; i < bits.length; i += RANDOM_CHUNK) {
    crypto.getRandomValues(bits.subarray(i, Math.min(i + RANDOM_CHUNK, bits.length)));
  }
  const u = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    u[i] = ((bits[2 * i] >>> 5) * 67108864 + (bits[2 * i + 1] >>> 6) + 0.5) / 9007199254740992;
  }
  return u;
}

// n standard normal draws (Box–Muller: two uniforms give two independent normals)
function normals(n) {
  const u = uniforms(n + (n % 2)), out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u[i])), t = 2 * Math.PI * u[i + 1];
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

class PriorSampler {
  static async create(spec, dim, bank) {
    switch (spec.kind) {
      case 'normal': return new NormalSampler(dim);
      case 'mixture': return new MixtureSampler(spec, dim);
      case 'flow':
        if (typeof ort === 'undefined') {
          return new BankSampler(bank, dim, 'onnxruntime-web is not installed, so the flow ' +
            "prior's graph cannot run in the page");
        }
        return new FlowSampler(await OrtGraph.create(spec.file, [dim]), dim); // app.js's
      case 'bank': return new BankSampler(bank, dim, spec.why);
      default: throw new Error(`unknown prior sampler '${spec.kind}': the page is older than ` +
        'the explorer that wrote runs.json; reload it');
    }
  }
  constructor(dim, fresh, why = null) { this.dim = dim; this.fresh = fresh; this.why = why; }
}

class NormalSampler extends PriorSampler {
  constructor(dim) { super(dim, true); }
  async sample(k) { return Float32Array.from(normals(k * this.dim)); }
}

// a component by its weight, then mean + scale · ε
class MixtureSampler extends PriorSampler {
  constructor(spec, dim) {
    super(dim, true);
    this.means = spec.means; this.scales = spec.scales;
    let total = 0;
    this.cumulative = spec.weights.map((w) => (total += w));
    this.total = total; // 1 up to rounding: a uniform is drawn on [0, total)
  }
  async sample(k) {
    const d = this.dim, u = uniforms(k), eps = normals(k * d), z = new Float32Array(k * d);
    const last = this.cumulative.length - 1;
    for (let i = 0; i < k; i++) {
      const target = u[i] * this.total;
      let c = 0;
      while (c < last && this.cumulative[c] <= target) c++;
      const m = this.means[c], s = this.scales[c];
      for (let j = 0; j < d; j++) z[i * d + j] = m[j] + s[j] * eps[i * d + j];
    }
    return z;
  }
}

// ε ~ N(0, I) through the flow prior's graph, ε (k, dim) → z (k, dim)
class FlowSampler extends PriorSampler {
  constructor(graph, dim) { super(dim, true); this.graph = graph; }
  async transform(eps, k) { // eps: Float32Array (k·dim) → z: Float32Array (k·dim)
    return Float32Array.from(await this.graph.run(eps, k));
  }
  async sample(k) { return this.transform(Float32Array.from(normals(k * this.dim)), k); }
}

// k rows of the fixed bank, each picked uniformly: draws made once, not afresh
class BankSampler extends PriorSampler {
  constructor(bank, dim, why) {
    super(dim, false, why);
    this.bank = bank; this.draws = bank.length / dim;
  }
  async sample(k) {
    const d = this.dim, u = uniforms(k), z = new Float32Array(k * d);
    for (let i = 0; i < k; i++) {
      const j = Math.min(Math.floor(u[i] * this.draws), this.draws - 1);
      z.set(this.bank.subarray(j * d, (j + 1) * d), i * d);
    }
    return z;
  }
}
