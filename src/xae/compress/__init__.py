"""Compression through a trained model: lossless bits-back ANS and lossy latent coding.

>>> from xae.compress import compress, decompress
>>> compress(model, x, "test.xae")                 # binary x, BB-ANS (Townsend et al. 2019)
>>> x2, meta = decompress(model, "test.xae")        # bit for bit
>>> compress(model, x, "test.xae", lossy_coding=True, step=0.5)  # the quantized latent, under the prior

The entropy coder is constriction's ANS (``pip install 'xae[compress]'``); importing this
package does not need it, coding does.
"""
from __future__ import annotations

from xae.compress.codec import Written, compress, decompress

__all__ = ["Written", "compress", "decompress"]
