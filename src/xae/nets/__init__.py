"""Encoder/decoder pairs. An encoder maps data to features (B, F); a decoder maps z to θ.

``ENCODERS``/``DECODERS`` are the name tables the registry builds from.
"""
from __future__ import annotations

from xae.nets.conv import ConvDecoder, ConvEncoder
from xae.nets.mlp import MLPDecoder, MLPEncoder

ENCODERS = {"mlp": MLPEncoder, "conv": ConvEncoder}
DECODERS = {"mlp": MLPDecoder, "conv": ConvDecoder}

__all__ = ["MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "ENCODERS", "DECODERS"]
