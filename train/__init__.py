"""Online half of musicid: streaming shards into a ResNet18, evaluation and prediction."""
