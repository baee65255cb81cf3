"""Training on Hugging Face Accelerate: settings, optimizer and schedules, checkpoints, tracking, the loop."""

from hercules.training.checkpoint import CheckpointManager, NonFiniteCheckpoint
from hercules.training.config import CheckpointSettings, ScheduleSettings, TrackingSettings, TrainingSettings
from hercules.training.run_folder import RunFolderInUse, RunFolderLocked, RunLock
from hercules.training.trainer import Trainer, TrainingDiverged, TrainResult

__all__ = [
    "CheckpointManager",
    "CheckpointSettings",
    "NonFiniteCheckpoint",
    "RunFolderInUse",
    "RunFolderLocked",
    "RunLock",
    "ScheduleSettings",
    "TrackingSettings",
    "Trainer",
    "TrainingDiverged",
    "TrainResult",
    "TrainingSettings",
]
