"""The tiny causal LM of the recall tests (built from a config in code; see
agentmem_gpu.tiny_lm)."""

from agentmem_gpu.tiny_lm import build_tiny_lm, build_tiny_lm_for

__all__ = ["build_tiny_lm", "build_tiny_lm_for"]
