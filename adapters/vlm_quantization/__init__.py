"""vlm_quantization: the reference adapter (image <-> text retrieval with nested hash codes).

Importing this package is cheap (no torch, no numpy): the TUI lists adapters and paints
their config forms before anything heavy loads.
"""

from .adapter import VLMQuantizationAdapter

__all__ = ["VLMQuantizationAdapter"]
