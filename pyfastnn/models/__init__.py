"""Pretrained architectures: vision models with torchvision's constructors and state_dict keys, text models
with transformers' class names, config.json fields, state_dict keys and output objects, and tokenizers on
the `tokenizers` package. Nothing is downloaded: weights come from files the user has."""
from __future__ import annotations

from ._weights import WeightsError
from .auto import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSequenceClassification
from .bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, BertPreTrainedModel
from .configuration import ConfigError, PretrainedConfig
from .generation import GenerationMixin, KVCache
from .gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model, GPT2PreTrainedModel
from .mobilenet import MobileNetV2, mobilenet_v2
from .outputs import (BaseModelOutputWithPastAndCrossAttentions, BaseModelOutputWithPoolingAndCrossAttentions,
                      CausalLMOutputWithCrossAttentions, MaskedLMOutput, ModelOutput, SequenceClassifierOutput)
from .pretrained import PreTrainedModel
from .resnet import (ResNet, resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d,
                     resnext101_64x4d, wide_resnet50_2, wide_resnet101_2)
from .tokenizers import AutoTokenizer, BatchEncoding, BertTokenizer, GPT2Tokenizer, PreTrainedTokenizer
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = ["ResNet", "VGG", "MobileNetV2", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2", "vgg11",
           "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "mobilenet_v2",
           "PretrainedConfig", "PreTrainedModel", "ConfigError", "WeightsError", "BertConfig", "BertModel",
           "BertPreTrainedModel", "BertForSequenceClassification", "BertForMaskedLM", "GPT2Config", "GPT2Model",
           "GPT2PreTrainedModel", "GPT2LMHeadModel", "AutoConfig", "AutoModel", "AutoModelForCausalLM",
           "AutoModelForMaskedLM", "AutoModelForSequenceClassification", "GenerationMixin", "KVCache",
           "ModelOutput", "BaseModelOutputWithPoolingAndCrossAttentions", "BaseModelOutputWithPastAndCrossAttentions",
           "SequenceClassifierOutput", "MaskedLMOutput", "CausalLMOutputWithCrossAttentions",
           "AutoTokenizer", "BatchEncoding", "BertTokenizer", "GPT2Tokenizer", "PreTrainedTokenizer"]
