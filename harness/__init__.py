"""repro: a reproducibility harness for the CIFAR-10 residual-network literature."""
