"""Offline data: MusicNet reading, label merging, log-mel features, WebDataset shards (written and
read)."""
