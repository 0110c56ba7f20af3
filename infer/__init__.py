"""Using a trained model: checkpoints and calibration, predictors, metrics, evaluation, prediction
and reports.

Nothing here imports the trainer: a model is used without pulling in DDP, losses or augmentation."""
