"""The training workload: CIFAR-10 data, the CNN family, a fast trial trainer, the search space."""

from qhpo.workload._data import BATCHES_FOLDER, CifarData, ImageSplit, load_cifar10, resolve_data_dir
from qhpo.workload._device import resolve_device
from qhpo.workload._download import CIFAR10_MD5, CIFAR10_URL, download_cifar10, remove_partial_downloads
from qhpo.workload._epochs import TrainingEnd, train_epochs
from qhpo.workload._model import CifarCNN
from qhpo.workload._precision import PRECISIONS, resolve_precision
from qhpo.workload._space import TRAINER_PARAMETERS, Parameter, SearchSpace, default_search_space
from qhpo.workload._trainer import TrialDiverged, TrialTrainer

__all__ = [
    "BATCHES_FOLDER",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "CifarCNN",
    "CifarData",
    "ImageSplit",
    "PRECISIONS",
    "Parameter",
    "SearchSpace",
    "TRAINER_PARAMETERS",
    "TrainingEnd",
    "TrialDiverged",
    "TrialTrainer",
    "default_search_space",
    "download_cifar10",
    "load_cifar10",
    "remove_partial_downloads",
    "resolve_data_dir",
    "resolve_device",
    "resolve_precision",
    "train_epochs",
]
