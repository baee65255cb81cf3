"""Training on Hugging Face Accelerate: settings, optimizer and schedules, checkpoints, tracking, the loop."""

from hercules.lazy import lazy_package

# Imported on first use: importing a config module of this package does not import torch.
_EXPORTS = {
    "CheckpointManager": "hercules.training.checkpoint",
    "NonFiniteCheckpoint": "hercules.training.checkpoint",
    "RunFolderInUse": "hercules.training.run_folder",
    "RunFolderLocked": "hercules.training.run_folder",
    "RunLock": "hercules.training.run_folder",
    "CheckpointSettings": "hercules.training.config",
    "ScheduleSettings": "hercules.training.config",
    "TrackingSettings": "hercules.training.config",
    "TrainResult": "hercules.training.trainer",
    "Trainer": "hercules.training.trainer",
    "TrainingDiverged": "hercules.training.trainer",
    "TrainingSettings": "hercules.training.config",
}
lazy_package(__name__, _EXPORTS)

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
