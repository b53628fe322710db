"""``dtorch.nn.modules``: ``Module``, the containers and every layer."""

from dtorch.nn.modules.module import Module, RemovableHandle  # noqa: F401
from dtorch.nn.modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from dtorch.nn.modules.linear import Bilinear, Identity, Linear  # noqa: F401
from dtorch.nn.modules.conv import (  # noqa: F401
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)
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
from dtorch.nn.modules.sparse import Embedding, EmbeddingBag  # noqa: F401
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
from dtorch.nn.modules.activation import Hardshrink, PReLU, RReLU, Softmax2d, Softshrink  # noqa: F401
from dtorch.nn.modules.dropout import AlphaDropout, Dropout3d, FeatureAlphaDropout  # noqa: F401
from dtorch.nn.modules.pooling import (  # noqa: F401
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool3d,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)
from dtorch.nn.modules.normalization import (  # noqa: F401
    BatchNorm3d,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LocalResponseNorm,
    RMSNorm,
    SyncBatchNorm,
)
from dtorch.nn.modules.padding import *  # noqa: F401,F403
from dtorch.nn.modules.pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle  # noqa: F401
from dtorch.nn.modules.distance import CosineSimilarity, PairwiseDistance  # noqa: F401
from dtorch.nn.modules.fold import Fold, Unfold  # noqa: F401
from dtorch.nn.modules.lazy import (  # noqa: F401
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
    LazyLinear,
)
from dtorch.nn.modules.data_parallel import DataParallel  # noqa: F401
from dtorch.nn.modules.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401
from dtorch.nn.modules.loss import (  # noqa: F401
    CTCLoss,
    CosineEmbeddingLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    MultiLabelMarginLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    NLLLoss2d,
    PoissonNLLLoss,
    SoftMarginLoss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
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
