"""Helpers for modules' state dicts, at PyTorch's path ``torch.nn.modules.utils``."""

__all__ = ["consume_prefix_in_state_dict_if_present"]


def consume_prefix_in_state_dict_if_present(state_dict, prefix):
    """Strip ``prefix`` from every key of ``state_dict`` that starts with it, in place (also in its ``_metadata``).

    Use it to load a checkpoint saved from a ``DistributedDataParallel`` or ``DataParallel`` model (keys
    ``module.*``) into the bare model.

    >>> import collections
    >>> sd = collections.OrderedDict([("module.weight", 1), ("module.bias", 2)])
    >>> consume_prefix_in_state_dict_if_present(sd, "module.")
    >>> list(sd)
    ['weight', 'bias']
    """
    keys = list(state_dict.keys())
    for key in keys:
        if key.startswith(prefix):
            state_dict[key[len(prefix):]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata.keys()):
            if len(key) == 0:
                continue
            if key == prefix.replace(".", "") or key.startswith(prefix):
                metadata[key[len(prefix):]] = metadata.pop(key)
