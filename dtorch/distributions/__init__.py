"""``dtorch.distributions``: PyTorch's ``torch.distributions`` for the distributions training scripts use most.

Every distribution follows the ``Distribution`` interface (``batch_shape``/``event_shape``, ``sample``,
``rsample``, ``log_prob``, ``entropy``, ``mean``/``mode``/``variance``/``stddev``, ``expand``); densities and
entropies are compositions of dtorch ops, so they are differentiable in the parameters. One file per family;
``kl`` holds the closed-form KL divergences.

>>> import dtorch
>>> d = dtorch.distributions.Normal(dtorch.tensor(0.0), dtorch.tensor(2.0))
>>> d.entropy()
tensor(2.1121)
"""

from dtorch.distributions import constraints  # noqa: F401
from dtorch.distributions.bernoulli import Bernoulli  # noqa: F401
from dtorch.distributions.categorical import Categorical, OneHotCategorical  # noqa: F401
from dtorch.distributions.distribution import Distribution, set_default_validate_args  # noqa: F401
from dtorch.distributions.exponential import Exponential  # noqa: F401
from dtorch.distributions.independent import Independent  # noqa: F401
from dtorch.distributions.kl import kl_divergence, register_kl  # noqa: F401
from dtorch.distributions.laplace import Laplace  # noqa: F401
from dtorch.distributions.multivariate_normal import MultivariateNormal  # noqa: F401
from dtorch.distributions.normal import LogNormal, Normal  # noqa: F401
from dtorch.distributions.uniform import Uniform  # noqa: F401

__all__ = ["Bernoulli", "Categorical", "Distribution", "Exponential", "Independent", "Laplace", "LogNormal",
           "MultivariateNormal", "Normal", "OneHotCategorical", "Uniform", "constraints", "kl_divergence",
           "register_kl", "set_default_validate_args"]
