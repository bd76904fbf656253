"""Pretrained architectures with torchvision's and transformers' names; for now, the tokenizers."""
from __future__ import annotations

from .tokenizers import AutoTokenizer, BatchEncoding, BertTokenizer, GPT2Tokenizer, PreTrainedTokenizer

__all__ = ["AutoTokenizer", "BatchEncoding", "BertTokenizer", "GPT2Tokenizer", "PreTrainedTokenizer"]
