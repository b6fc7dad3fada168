"""Hand models, the HandNet, data sets, training and evaluation."""
