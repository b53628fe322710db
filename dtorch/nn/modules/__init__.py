"""``dtorch.nn.modules``: ``Module``, the containers and every layer."""

from dtorch.nn.modules.module import Module, RemovableHandle  # noqa: F401
from dtorch.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from dtorch.nn.modules.linear import Bilinear, Identity, Linear  # noqa: F401
from dtorch.nn.modules.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: F401
from dtorch.nn.modules.pooling import (  # noqa: F401
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from dtorch.nn.modules.normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm  # noqa: F401
from dtorch.nn.modules.dropout import Dropout, Dropout1d, Dropout2d  # noqa: F401
from dtorch.nn.modules.sparse import Embedding  # noqa: F401
from dtorch.nn.modules.flatten import Flatten, Unflatten  # noqa: F401
from dtorch.nn.modules.activation import (  # noqa: F401
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmin,
    Softplus,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from dtorch.nn.modules.loss import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from dtorch.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase  # noqa: F401
from dtorch.nn.modules.attention import MultiheadAttention  # noqa: F401
from dtorch.nn.modules.transformer import (  # noqa: F401
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = sorted(
    name for name, value in list(globals().items())
    if isinstance(value, type) and name[0] != "_" and name != "RemovableHandle"
)
