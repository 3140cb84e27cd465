"""The names training options accept, in one torch-free place: the losses use them to dispatch, the CLI
to refuse an unknown name as a one-line usage error before anything heavy is imported."""

ADV_LOSSES = ("bce", "lsgan", "hinge")
"""Adversarial losses (:class:`~filmcolor.train.losses.AdversarialLoss`)."""
AB_LOSSES = ("l1", "de94")
"""Pixel losses on a,b (``TrainConfig.ab_loss``): L1, or the CIE94 colour difference."""
REBALANCED_AB_LOSSES = ("l1",)
"""Pixel losses that class rebalancing (``--rebalance``) weights."""
