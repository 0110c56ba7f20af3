"""Training: streaming shards into the ResNet18 (one CPU, one GPU, or many through torchrun),
losses, augmentation."""
