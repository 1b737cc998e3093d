"""Encoder/decoder pairs. An encoder maps data to features (B, F), or to a map (B, F, h, w)
for a spatial code (:class:`MapEncoder`); a decoder maps z to θ.

``ENCODERS``/``DECODERS`` are the name tables the registry builds from.
"""
from __future__ import annotations

from xae.nets.conv import ConvDecoder, ConvEncoder
from xae.nets.conv_map import ConvMapDecoder, ConvMapEncoder, MapEncoder
from xae.nets.diffusers_nets import DiffusersDecoder, DiffusersEncoder
from xae.nets.hvae import HVAEDecoder, HVAEEncoder
from xae.nets.mlp import MLPDecoder, MLPEncoder
from xae.nets.none import NoEncoder
from xae.nets.rnn import RNNDecoder, RNNEncoder
from xae.nets.transformer import TransformerDecoder

ENCODERS = {"mlp": MLPEncoder, "conv": ConvEncoder, "conv_map": ConvMapEncoder,
            "hvae": HVAEEncoder, "diffusers": DiffusersEncoder, "rnn": RNNEncoder,
            "none": NoEncoder}
DECODERS = {"mlp": MLPDecoder, "conv": ConvDecoder, "conv_map": ConvMapDecoder,
            "hvae": HVAEDecoder, "diffusers": DiffusersDecoder, "rnn": RNNDecoder,
            "transformer": TransformerDecoder}

__all__ = ["MLPEncoder", "MLPDecoder", "ConvEncoder", "ConvDecoder", "ConvMapEncoder",
           "ConvMapDecoder", "MapEncoder", "HVAEEncoder", "HVAEDecoder",
           "DiffusersEncoder", "DiffusersDecoder", "NoEncoder", "RNNEncoder", "RNNDecoder", "TransformerDecoder", "ENCODERS",
           "DECODERS"]
