"""Datasets (MNIST and friends) held in memory, and a fast in-memory batch loader."""
from gankit.data.datasets import DATASETS, ImageDataset, load_dataset
from gankit.data.idx import DataError
from gankit.data.loader import BatchLoader

__all__ = ["DATASETS", "BatchLoader", "DataError", "ImageDataset", "load_dataset"]
