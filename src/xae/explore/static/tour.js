// xae latent explorer: the walk-through. A panel of short steps (encode → distribution →
// sample → decode → prior sample → holes → β = 0) that acts on the run shown and outlines the
// part of the page each step talks about. It ends with the question: what happens at β = 0?
// answered by switching to the sweep's β = 0 run where there is one.
'use strict';

// the map point (u, v) in the current view farthest from every test point: a hole
function emptiest(panel) {
  const xs = [], ys = [];
  for (let i = 0; i < panel.n; i++) {
    const [x, y] = panel.toScreen(panel.points[3 * i], panel.points[3 * i + 1]);
    xs.push(x); ys.push(y);
  }
  let best = [MAP_SIZE / 2, MAP_SIZE / 2], far = -1;
  for (let gx = 1; gx < 24; gx++) {
    for (let gy = 1; gy < 24; gy++) {
      const sx = (gx * MAP_SIZE) / 24, sy = (gy * MAP_SIZE) / 24;
      let near = Infinity;
      for (let i = 0; i < xs.length; i++) near = Math.min(near, (xs[i] - sx) ** 2 + (ys[i] - sy) ** 2);
      if (near > far) { far = near; best = [sx, sy]; }
    }
  }
  return best;
}

const TOUR_STEPS = [
  { title: 'Encode', target: (p) => p.el.querySelector('.map-wrap'),
    text: (p) => 'Every dot on the map is one test image x, placed where the encoder sends it' +
      (p.posterior ? ': the centre μ(x) of its distribution q(z|x).' : ': the point z = f(x).') +
      (p.run.plane.pca ? ` The code has ${p.run.latent_dim} dimensions, so the map shows the ` +
        'plane through the dots that spreads them most.' : '') },
  { title: 'A distribution, not a point', target: (p) => p.el.querySelector('.posterior'),
    act: (p) => p.showPosterior(p.nearest(MAP_SIZE / 2, MAP_SIZE / 2, Infinity)), // the middle
    text: (p) => p.posterior
      ? 'A VAE\'s encoder returns a whole Gaussian for each x. The ellipses on the map are one ' +
        'and two standard deviations of q(z|x) for the dot nearest the middle. Click any dot ' +
        '(or hover it holding Ctrl) to see its own.'
      : `This run's code is a single point per image: ${p.run.posterior.why}.` },
  { title: 'Sample', target: (p) => p.el.querySelector('.post-strip'),
    text: (p) => p.posterior
      ? 'The orange dots are draws z ~ q(z|x); the strip shows the reconstruction (decoded at ' +
        'μ) and then each draw decoded. Training asks the decoder to read every draw back as ' +
        'x, so the region around each dot, not just the dot, decodes to something like x.'
      : 'With a single point there is nothing to draw: the decoder is only ever trained on the ' +
        'points themselves, and nothing tells it what the space between them means.' },
  { title: 'Decode', target: (p) => p.el.querySelector('.decoded'),
    act: (p) => { p.hover(MAP_SIZE / 2, MAP_SIZE / 2, performance.now()); },
    text: () => 'The decoder turns any latent into an image. Move the cursor over the map: the ' +
      'image beside it is decoded in this page, under the cursor, as you move.' },
  { title: 'Sample from the prior', target: (p) => p.el.querySelector('.samples'),
    act: (p) => p.samples(),
    text: (p) => `These images decode draws z ~ p(z) from ${p.run.prior.about}: new images ` +
      'that were never encoded. The KL term of the ELBO pulls every q(z|x) towards this prior, ' +
      'so that its draws land where the decoder has learned to read.' },
  { title: 'Holes', target: (p) => p.el.querySelector('.map-wrap'),
    act: (p) => { const [x, y] = emptiest(p); p.keyCursor = [x, y]; p.hover(x, y, performance.now()); },
    text: () => 'The red cursor now stands at the spot of this view farthest from every test ' +
      'image: a hole. The image beside the map is what the decoder makes of it. Where the ' +
      'prior puts mass but no data lands, its samples come out like this.' },
  { title: 'What happens at β = 0?', target: () => document.getElementById('sweep-bar'),
    text: () => 'β weighs the KL term that pulls each q(z|x) towards the prior. At β = 0 ' +
      'nothing pulls: the encoder is free to shrink every ellipse to a point and to spread the ' +
      'dots anywhere, and the model becomes a plain autoencoder with a noisy code.',
    extra: (el) => {
      const sweep = xae.index.sweep, zero = sweep ? betaZero(sweep) : null;
      if (!zero) {
        el.textContent = 'This page has no β = 0 run. To see one, train a sweep that has it, ' +
          'e.g. `xae sweep --beta 0,0.1,1,10 --out runs/beta`, and open it with `xae explore ' +
          'runs/beta`.';
        return;
      }
      const b = document.createElement('button');
      b.textContent = `show the β = 0 run (${zero.name})`;
      b.addEventListener('click', () => {
        const i = xae.tour.point;
        xae.sweep.select(sweep.members.indexOf(zero));
        const p = xae.shown();
        if (p && i !== null && i < p.n) p.showPosterior(i).catch(fail);
        xae.tour.answered = true;
      });
      el.append(b);
    } },
];

function setupTour() {
  const box = document.getElementById('tour'), start = document.getElementById('tour-start');
  const tour = xae.tour = { step: -1, steps: TOUR_STEPS, point: null, answered: false, focus: null };
  const unfocus = () => { if (tour.focus) tour.focus.classList.remove('tour-focus'); tour.focus = null; };
  tour.go = async (k) => {
    unfocus();
    tour.step = k;
    const s = TOUR_STEPS[k], p = xae.shown();
    box.hidden = false;
    box.querySelector('.tour-count').textContent = `step ${k + 1} of ${TOUR_STEPS.length}`;
    box.querySelector('#tour-title').textContent = s.title;
    const extra = box.querySelector('.tour-extra');
    extra.textContent = '';
    box.querySelector('.tour-back').disabled = k === 0;
    box.querySelector('.tour-next').disabled = k === TOUR_STEPS.length - 1;
    if (!p) {
      box.querySelector('.tour-text').textContent = 'Pick a run that loaded to follow the walk-through.';
      return;
    }
    if (s.act) await s.act(p);
    if (k === 1) tour.point = p.ellipse ? p.ellipse.index : null;
    box.querySelector('.tour-text').textContent = s.text(p);
    if (s.extra) s.extra(extra);
    const target = s.target(p);
    if (target && !target.hidden) { target.classList.add('tour-focus'); tour.focus = target; }
    target?.scrollIntoView?.({ block: 'nearest' });
  };
  tour.close = () => { unfocus(); box.hidden = true; tour.step = -1; };
  start.addEventListener('click', () => tour.go(0).catch(fail));
  box.querySelector('.tour-next').addEventListener('click', () => tour.go(tour.step + 1).catch(fail));
  box.querySelector('.tour-back').addEventListener('click', () => tour.go(tour.step - 1).catch(fail));
  box.querySelector('.tour-close').addEventListener('click', tour.close);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && tour.step >= 0 && e.target === document.body) tour.close(); });
}

setupTour();
