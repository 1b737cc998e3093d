// xae latent explorer: a sweep's slider and rate–distortion plot (runs.json's sweep, written by
// xae/explore/sweep.py). The slider steps through the sweep's members in the order of their
// swept values; a member that loaded shows its run's panel (its map turned to match the one
// before it), a failed one says why. The plot puts each run at its rate and distortion on the
// test set, the shown one ringed; clicking a point shows that run.
'use strict';

const RD_W = 260, RD_H = 150, RD_PAD = 30;

function keyName(key) { return key === 'beta.value' ? 'β' : key; }

function memberLabel(m) {
  return Object.entries(m.params).map(([k, v]) => `${keyName(k)} = ${v}`).join(', ');
}

// the member whose swept β is 0 and that loaded, or null
function betaZero(sweep) {
  return sweep.members.find((m) => m.run !== null && Number(m.params['beta.value']) === 0) || null;
}

function setupSweep(sweep, panels) {
  const bar = document.getElementById('sweep-bar'), slider = document.getElementById('sweep-slider');
  const value = document.getElementById('sweep-value'), card = document.getElementById('failed-member');
  const members = sweep.members;
  bar.hidden = false;
  document.querySelector('#controls label').hidden = true; // the slider replaces the run menu
  document.getElementById('controls').hidden = false;
  document.getElementById('sweep-key').textContent = sweep.keys.map(keyName).join(', ');
  slider.max = String(members.length - 1);
  const failed = members.filter((m) => m.failed !== null);
  document.getElementById('sweep-note').textContent = `${members.length} runs of sweep ` +
    `${sweep.folder}, in the order of ${sweep.keys.join(', ')}` +
    (failed.length ? `; ${failed.length} failed: ${failed.map((m) => m.name).join(', ')}` : '') +
    '. Each map is turned (rotated or mirrored, never stretched) to match the one before it.';
  const plot = rdPlot(members, panels);
  const select = (k) => {
    const m = members[k];
    slider.value = String(k);
    value.textContent = memberLabel(m) + (m.failed !== null ? ' (failed)' : '');
    card.hidden = m.failed === null;
    if (m.failed !== null) {
      card.querySelector('.run-name').textContent = `${m.name}: failed`;
      card.querySelector('.failed-why').textContent = m.failed;
    }
    xae.showRun(m.run === null ? -1 : m.run);
    xae.sweep.current = k;
    plot.draw(k);
  };
  xae.sweep = { members, current: 0, select, plot };
  slider.addEventListener('input', () => select(Number(slider.value)));
  document.getElementById('rd-plot').addEventListener('click', (e) => {
    const k = plot.nearest(e.offsetX, e.offsetY);
    if (k >= 0) select(k);
  });
  select(Math.max(0, members.findIndex((m) => m.run !== null)));
}

// rate (x) against distortion (y) of the members that loaded and have both figures
function rdPlot(members, panels) {
  const canvas = document.getElementById('rd-plot'), ctx = sizedCanvas(canvas, RD_W, RD_H);
  const pts = [];
  members.forEach((m, k) => {
    const s = m.run === null ? null : panels[m.run].run.stats;
    if (s && typeof s.rate === 'number' && typeof s.distortion === 'number') {
      pts.push({ k, rate: s.rate, distortion: s.distortion, label: memberLabel(m) });
    }
  });
  const span = (vals) => {
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const pad = 0.08 * (hi - lo);
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = pts.length ? span(pts.map((p) => p.rate)) : [0, 1];
  const [y0, y1] = pts.length ? span(pts.map((p) => p.distortion)) : [0, 1];
  for (const p of pts) {
    p.x = RD_PAD + ((p.rate - x0) / (x1 - x0)) * (RD_W - RD_PAD - 8);
    p.y = RD_H - RD_PAD + 8 - ((p.distortion - y0) / (y1 - y0)) * (RD_H - RD_PAD);
  }
  const draw = (current) => {
    ctx.clearRect(0, 0, RD_W, RD_H);
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, RD_W, RD_H);
    ctx.strokeStyle = '#999'; ctx.lineWidth = 1; ctx.beginPath();
    ctx.moveTo(RD_PAD, 4); ctx.lineTo(RD_PAD, RD_H - RD_PAD + 12); ctx.lineTo(RD_W - 4, RD_H - RD_PAD + 12);
    ctx.stroke();
    ctx.fillStyle = '#555'; ctx.font = '10px sans-serif'; ctx.textAlign = 'center';
    if (pts.length) { // the figures' own ranges (the axes have a margin around them)
      const r = pts.map((p) => p.rate), d = pts.map((p) => p.distortion);
      ctx.fillText(`rate ${fmt(Math.min(...r))} … ${fmt(Math.max(...r))}`, (RD_W + RD_PAD) / 2, RD_H - 4);
      ctx.textAlign = 'left';
      ctx.fillText(`distortion ${fmt(Math.min(...d))} … ${fmt(Math.max(...d))}`, RD_PAD + 4, 12);
      ctx.textAlign = 'center';
    }
    ctx.strokeStyle = '#bbb'; ctx.beginPath(); // the runs in sweep order, joined
    pts.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
    ctx.stroke();
    for (const p of pts) {
      ctx.fillStyle = p.k === current ? '#EE7733' : '#332288';
      ctx.beginPath(); ctx.arc(p.x, p.y, p.k === current ? 5 : 3.5, 0, 2 * Math.PI); ctx.fill();
      if (p.k === current) {
        ctx.strokeStyle = '#000'; ctx.lineWidth = 2; ctx.beginPath();
        ctx.arc(p.x, p.y, 9, 0, 2 * Math.PI); ctx.stroke(); ctx.lineWidth = 1;
      }
    }
  };
  const nearest = (x, y) => {
    let best = -1, d = 12 * 12;
    for (const p of pts) {
      const e = (p.x - x) ** 2 + (p.y - y) ** 2;
      if (e < d) { d = e; best = p.k; }
    }
    return best;
  };
  return { pts, draw, nearest };
}
