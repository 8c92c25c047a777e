"""The course's models, one file per family, each registered by name (see :mod:`.registry`).

``import d2ljax.models`` imports every model module in this package, so every model is registered;
the classes are re-exported here (``from d2ljax.models import SoftmaxRegression``).
"""

import importlib as _importlib
import pkgutil as _pkgutil

from d2ljax.models.alexnet import AlexNet
from d2ljax.models.attention import (
    AdditiveAttention,
    DotProductAttention,
    MultiHeadAttention,
    PositionalEncoding,
)
from d2ljax.models.bahdanau import Seq2SeqAttention, Seq2SeqAttentionDecoder
from d2ljax.models.bert import BERTClassifier, BERTEncoder, BERTModel, MaskLM, NextSentencePred
from d2ljax.models.bn_lenet import BNLeNet, BNLeNetScratch
from d2ljax.models.densenet import DenseBlock, DenseNet, transition_block
from d2ljax.models.googlenet import GoogLeNet, Inception
from d2ljax.models.gp import GPRegression
from d2ljax.models.gpt import GPT
from d2ljax.models.lenet import LeNet, LeNetScratch, layer_shapes
from d2ljax.models.linear import LinearRegression, LinearRegressionScratch
from d2ljax.models.mlp import (
    MLP,
    DeepMLP,
    DropoutMLP,
    DropoutMLPScratch,
    MLPScratch,
    deep_mlp,
    layer_gradient_norms,
    matrix_product_explosion,
)
from d2ljax.models.nin import NiN
from d2ljax.models.registry import (
    UnknownModelError,
    get_constructor,
    get_model,
    list_models,
    register,
)
from d2ljax.models.regnet import AnyNet, RegNetX32
from d2ljax.models.resnet import Residual, ResNet, ResNet18, ResNeXt, ResNeXtBlock
from d2ljax.models.rnn import (
    GRU,
    LSTM,
    RNN,
    RNNLM,
    BiRNNScratch,
    GRUScratch,
    LSTMScratch,
    RNNLMScratch,
    RNNScratch,
    StackedRNNScratch,
)
from d2ljax.models.seq2seq import (
    Decoder,
    Encoder,
    EncoderDecoder,
    Seq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
)
from d2ljax.models.softmax import SoftmaxRegression, SoftmaxRegressionScratch
from d2ljax.models.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderBlock,
    TransformerEncoder,
    TransformerEncoderBlock,
)
from d2ljax.models.vgg import VGG, VGG11, vgg_block
from d2ljax.models.vit import ViT

# Register the model families not imported by name above (any module here not starting with "_").
for _info in _pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_info.name}")
del _info

__all__ = [
    "GPT",
    "ViT",
    "AdditiveAttention",
    "DotProductAttention",
    "MultiHeadAttention",
    "PositionalEncoding",
    "Seq2SeqAttention",
    "Seq2SeqAttentionDecoder",
    "BERTClassifier",
    "BERTEncoder",
    "BERTModel",
    "MaskLM",
    "NextSentencePred",
    "GRU",
    "LSTM",
    "RNN",
    "RNNLM",
    "BiRNNScratch",
    "GRUScratch",
    "LSTMScratch",
    "RNNLMScratch",
    "RNNScratch",
    "StackedRNNScratch",
    "Decoder",
    "Encoder",
    "EncoderDecoder",
    "Seq2Seq",
    "Seq2SeqDecoder",
    "Seq2SeqEncoder",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderBlock",
    "TransformerEncoder",
    "TransformerEncoderBlock",
    "VGG",
    "VGG11",
    "AlexNet",
    "AnyNet",
    "BNLeNet",
    "BNLeNetScratch",
    "DenseBlock",
    "DenseNet",
    "GoogLeNet",
    "GPRegression",
    "Inception",
    "LeNet",
    "LeNetScratch",
    "NiN",
    "RegNetX32",
    "ResNeXt",
    "ResNeXtBlock",
    "ResNet",
    "ResNet18",
    "Residual",
    "layer_shapes",
    "transition_block",
    "vgg_block",
    "MLP",
    "DeepMLP",
    "DropoutMLP",
    "DropoutMLPScratch",
    "LinearRegression",
    "LinearRegressionScratch",
    "MLPScratch",
    "SoftmaxRegression",
    "SoftmaxRegressionScratch",
    "UnknownModelError",
    "deep_mlp",
    "get_constructor",
    "get_model",
    "layer_gradient_norms",
    "list_models",
    "matrix_product_explosion",
    "register",
]
