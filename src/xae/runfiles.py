"""The names of the files and folders of a run folder, in one place.

``xae train`` writes the first group; the commands run on a finished run add the others
(``xae eval``, ``xae export``, ``xae prior fit``, ``xae check``, ``xae sweep``), and
``xae import diffusers`` writes a run folder of its own. Paths are
built from these names, never from string literals of them.
"""
from __future__ import annotations

# ---- written by xae train ----------------------------------------------------------------

CONFIG = "config.json"
"""The run's full config (also the config of ``code_prior/``): what rebuilds the model."""
WEIGHTS = "model.safetensors"
"""The model's latest weights, what :func:`xae.load` reads (also in ``checkpoint/`` and
``code_prior/``)."""
CHECKPOINT = "checkpoint"
"""The folder a resume reads: the weights and :data:`STATE` of one step, replaced whole."""
STATE = "state.pt"
"""In ``checkpoint/``: the optimizer, step and random state (tensors, no pickle)."""
LOG = "metrics.jsonl"
"""The training log, one JSON record per ``train.log_every`` steps."""
HELD_OUT = "held_out.jsonl"
"""The held-out evaluations during training, one JSON record each."""
BEST = "best.safetensors"
"""The weights with the lowest held-out loss so far."""
METRICS = "metrics.json"
"""The finished run's summary and test metrics (also the code prior's metrics)."""
FIGURES = "figures"
"""The folder of the figures drawn at the end of training."""
RECONSTRUCTIONS_PNG = "reconstructions.png"
"""In ``figures/``: test data above their reconstructions."""
RECONSTRUCTIONS_TXT = "reconstructions.txt"
"""In ``figures/``, for sentences: test sentences above their greedy reconstructions."""
SAMPLES_TXT = "samples.txt"
"""In ``figures/``, for sentences: prior draws written greedily and by sampling."""
SAMPLES_PNG = "samples.png"
"""In ``figures/``: decoded draws from the prior."""
LATENT_MAP_PNG = "latent_map.png"
"""In ``figures/``: the test set's latent means on their plane."""
HOLES_PNG = "holes.png"
"""In ``figures/``, for 2-D stochastic latents: the prior beside the aggregate posterior."""
CURVES_PNG = "curves.png"
"""In ``figures/``: the training curves."""
LEVELS_PNG = "levels.png"
"""In ``figures/``, for a hierarchy: test images decoded with their top k groups from the
posterior and the rest from the prior."""
RATE_GROUPS_PNG = "rate_groups.png"
"""In ``figures/``, for a hierarchy: the KL of each latent group over training, with the total
(from the ``rate/<group>`` columns of :data:`LOG`)."""
TRAVERSALS_PNG = "traversals.png"
"""In ``figures/``, for a flat Gaussian code of images: latent traversals of the first test image,
the rows (at most ten) sorted by the KL of each dimension (:func:`xae.viz_factors.traversals`)."""
CELL_MAP_PNG = "cell_map.png"
"""In ``figures/``, for counts: the test cells' latent means on their principal plane, coloured
by cell type and by batch (:func:`xae.viz_cells.cell_map`)."""
FACTOR_MI_PNG = "factor_mi.png"
"""In ``figures/``, written by ``xae eval --disentanglement``: the factor × latent normalised
mutual information as a heat map (:func:`xae.viz_factors.mi_heatmap`)."""
TEMPERATURES_PNG = "temperatures.png"
"""In ``figures/``, for a hierarchy whose prior has a temperature: rows of samples at
temperatures 1, 0.8, 0.6 and 0.4, from the same noise."""

# ---- written into a finished run by other commands ---------------------------------------

EVAL = "eval.json"
"""``xae eval``: the run's test metrics with the importance-weighted likelihood."""
EXPORT = "export"
"""``xae export``: the folder of the ONNX graphs (unless ``--out`` names another)."""
EXPORT_META = "export.json"
"""In ``export/``: the shapes, opset and parity of the graphs; marks the folder as an export."""
DECODER_ONNX = "decoder.onnx"
"""In ``export/``: z → the mean of p(x|z)."""
ENCODER_ONNX = "encoder.onnx"
"""In ``export/``: x → the latent mean."""
DIFFUSERS_EXPORT = "diffusers"
"""``xae export --format diffusers``: the folder ``AutoencoderKL.from_pretrained`` loads
(unless ``--out`` names another)."""
DIFFUSERS_CONFIG = "config.json"
"""In a diffusers folder: the ``AutoencoderKL`` config (diffusers' file name)."""
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
"""In a diffusers folder: the ``AutoencoderKL`` weights (diffusers' file name)."""
DIFFUSERS_META = "xae_export.json"
"""In ``diffusers/``: the data conventions, the scaling factor and the parity with diffusers;
marks the folder as an export."""
IMPORTED = "imported.json"
"""``xae import diffusers``: in the run folder, where the weights came from, the conventions
chosen and the AutoencoderKL keys that were ignored."""
CODE_PRIOR = "code_prior"
"""``xae prior fit``: the folder of the fitted code prior (its config, weights, metrics)."""
DIFFUSION_PRIOR = "diffusion_prior"
"""``xae prior fit`` on a continuous code: the folder of the fitted diffusion prior (its
config with the latents' scale factor, weights, metrics)."""
DIFFUSION_FIT = "diffusion_prior_fit"
"""``xae prior fit`` on a continuous code: the checkpoint of a fit in progress (what
``--resume`` continues), removed once the prior is written."""
CHECKS = "checks"
"""``xae check … RUN``: the folder of the checks' results (unless ``--out`` names another)."""
GRADIENTS_JSON = "gradients.json"
"""``xae check gradients``: the estimators' statistics and verdicts."""
GRADIENTS_PNG = "gradients.png"
"""``xae check gradients``: the figure of the estimators' variances."""
PPCA_JSON = "ppca.json"
"""``xae check ppca``: the comparison with probabilistic PCA and its verdicts."""
PPCA_PNG = "ppca.png"
"""``xae check ppca``: the figure of that comparison."""
TRAIN_LOG = "train.log"
"""``xae sweep``: the output of the run's training process."""

# ---- beside runs --------------------------------------------------------------------------

STATIC_MARKER = ".xae-static"
"""In the folder ``xae explore --static`` writes: what marks it as one it may replace."""
SWEEP_REPORT = "sweep.json"
"""In the folder ``xae sweep`` writes, beside its runs: every run's swept values, status, log
and test metrics (:mod:`xae.sweep.report`); what ``xae explore SWEEP_DIR`` reads."""
