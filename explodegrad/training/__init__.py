"""Training: optimizers, the training loop, stacked runs and sweeps."""
