"""Utilities that sit beside the tensor API, as ``torch.utils`` does. ``dtorch.utils.data`` holds the data
pipeline (datasets, samplers, DataLoader, sharded datasets)."""
