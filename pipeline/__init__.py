"""Offline half of musicid: MusicNet reading, label merging, log-mel features and WebDataset shards."""
