"""Each baseline's batch transform, sampler and clipping as the authors' scripts (SPEC.md, Baselines)."""

import numpy as np
import pytest
import torch

from move.training.context import Batch
from move.training.loop import train_step
from move.training.methods import get_method
from move.training.methods.framestack import framestack_end_of_epoch
from move.training.methods.move import dfs_masks
from move.training.model import VideoClassifier
from tests.conftest import make_context

COUNTS = np.array([120, 101, 100, 40, 3])
SMALL = dict(
    feature_dim=16, heads=2, d_k=4, d_v=4, clusters=3, codebook_dim=8, hidden_dim=12, lr=1e-3
)


def _context(method, epoch=1, seed=1, options=None, **settings):
    values = dict(SMALL, method=method, **settings) | {method: options or {}}
    return make_context(values, COUNTS, epoch, seed)


def _batch(n=8, frames=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, frames, 16, generator=generator)
    y = torch.zeros(n, 5)
    y[torch.arange(n), torch.arange(n) % 5] = 1
    return Batch(x, y, torch.arange(n), torch.full((n,), -1))


def _model(context):
    torch.manual_seed(0)
    return VideoClassifier(5, context.settings.model).eval()  # eval: no dropout in the checks


def test_framestack_stacks_the_first_half_only_and_not_in_epoch_zero():
    """Half-batch stacking: videos 4-7 of 8 reach the model unchanged, 0-3 are stacked with
    partners among 0-3 (classes 0 and 1 only)."""
    batch = _batch()
    batch.targets = torch.zeros(8, 5)
    batch.targets[torch.arange(8), torch.tensor([0, 1, 0, 1, 2, 3, 4, 2])] = 1
    seen = []

    class Recorder(VideoClassifier):
        def forward(self, x):
            seen.append(x.clone())
            return super().forward(x)

    context = _context("framestack", aggregators=False, epoch=1)
    context.state["class_ap"] = torch.tensor([0.9, 0.5, 0.3, 0.2, 0.1])
    model = Recorder(5, context.settings.model).eval()
    logits, targets = get_method("framestack").transform(model, batch, context)
    stacked = seen[0]
    torch.testing.assert_close(stacked[4:], batch.x[4:])
    torch.testing.assert_close(targets[4:], batch.targets[4:])
    assert not torch.equal(stacked[:4], batch.x[:4])
    assert torch.all(targets[:4].sum(1) == 1) and torch.all(targets[:4, 2:] == 0)
    # the running AP: a second forward of the unstacked batch, kept for the end of the epoch
    torch.testing.assert_close(seen[1], batch.x)
    seen.clear()
    first = _context("framestack", aggregators=False, epoch=0)
    _, targets = get_method("framestack").transform(model, batch, first)
    torch.testing.assert_close(seen[0], batch.x)  # epoch 0: no stacking
    torch.testing.assert_close(targets, batch.targets)


def test_framestack_ap_is_the_epochs_running_training_ap():
    context = _context("framestack", aggregators=False)
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    context.state["epoch_scores"] = [(scores[:2], targets[:2]), (scores[2:], targets[2:])]
    framestack_end_of_epoch(context)
    # class 0: the one positive ranks first -> 1; class 1: positives rank 1 and 3 -> (1 + 2/3) / 2
    torch.testing.assert_close(context.state["class_ap"], torch.tensor([1.0, 5 / 6]))
    assert "epoch_scores" not in context.state


def test_framestack_trains_with_focal_loss():
    context = _context("framestack", aggregators=False)
    logits, targets = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    loss = get_method("framestack").loss(logits, targets, _batch(), context)
    assert float(loss) == pytest.approx(1.1100, abs=1e-4)  # focal, gamma 1 (test_losses)


def test_mixup_with_aggregators_mixes_the_3072_d_features_not_frames():
    batch = _batch()
    context = _context("mixup", aggregators=True, seed=3)
    model = _model(context)
    logits, targets = get_method("mixup").transform(model, batch, context)
    replay = torch.Generator().manual_seed(3)  # the same draws: lambda, then the permutation
    from move.training.vicinity import sample_interpolation_weight

    lam = sample_interpolation_weight(1.0, replay)
    permutation = torch.randperm(8, generator=replay)
    z = model.aggregate(batch.x)
    assert z.shape == (8, 16 + 8)  # PSA (D) + codebook (codebook_dim): the 3072-d z at full size
    expected = model.classifier(lam * z + (1 - lam) * z[permutation])
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(
        targets, lam * batch.targets + (1 - lam) * batch.targets[permutation]
    )
    frame_mixed = model(lam * batch.x + (1 - lam) * batch.x[permutation])
    assert not torch.allclose(logits, frame_mixed, atol=1e-4)


def test_mixup_without_aggregators_mixes_frames():
    batch = _batch()
    context = _context("mixup", aggregators=False, seed=3)
    model = _model(context)
    logits, _ = get_method("mixup").transform(model, batch, context)
    replay = torch.Generator().manual_seed(3)
    from move.training.vicinity import sample_interpolation_weight

    lam = sample_interpolation_weight(1.0, replay)
    permutation = torch.randperm(8, generator=replay)
    torch.testing.assert_close(logits, model(lam * batch.x + (1 - lam) * batch.x[permutation]))


@pytest.mark.parametrize("method", ["plain", "cbs", "mixup", "framestack", "ldam_drw"])
def test_baselines_clip_the_classifier_gradient_norm_at_20_and_move_does_not(method):
    context = _context(method, aggregators=True)
    model = VideoClassifier(5, context.settings.model).train()
    with torch.no_grad():
        model.classifier[-1].weight.mul_(1e3)  # huge logits -> huge classifier gradients
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    batch = _batch()
    batch.anchor = batch.targets.argmax(1)
    assert context.settings.classifier_grad_clip(context.method.grad_clip) == 20.0
    train_step(model, get_method(method), batch, context, optimizer, 20.0)
    norm = torch.nn.utils.get_total_norm([p.grad for p in model.classifier.parameters()])
    assert float(norm) <= 20.0 + 1e-3
    aggregator_norm = torch.nn.utils.get_total_norm(
        [p.grad for p in model.psa.parameters() if p.grad is not None]
    )
    assert float(aggregator_norm) > 20.0  # only the classifier is clipped, as the scripts
    move = _context("move")
    assert move.settings.classifier_grad_clip(move.method.grad_clip) is None
    assert _context("plain", grad_clip="none").settings.classifier_grad_clip(20.0) is None
    assert _context("move", grad_clip=5).settings.classifier_grad_clip(None) == 5.0


def test_eql_tail_is_classes_with_at_most_100_videos_whatever_the_groups():
    context = _context("eql", aggregators=False, options={"gamma": 1.0})
    logits = torch.randn(4, 5)
    targets = torch.zeros(4, 5)
    targets[:, 0] = 1
    loss = get_method("eql").loss(logits, targets, _batch(), context)
    weight = torch.ones(4, 5)
    weight[:, 2:] = 0  # counts 100, 40, 3 <= 100: their negatives dropped (gamma 1); 101 kept
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, weight=weight)
    torch.testing.assert_close(loss, expected)


def test_cbs_draws_an_anchor_class_per_video():
    labels = [[0], [0, 1], [1], [2]]
    order, anchors = get_method("cbs").sampler(labels, 3, np.random.default_rng(0), 0, None)
    assert len(order) == len(anchors) == 4
    assert all(a in labels[i] for i, a in zip(order, anchors, strict=True))
    order, anchors = get_method("plain").sampler(labels, 3, np.random.default_rng(0), 0, None)
    assert sorted(order.tolist()) == [0, 1, 2, 3] and anchors is None


def test_minikinetics_switch_gives_dfs_to_sample_zero_only():
    """dfs_scope first_sample (the authors' MiniKinetics script): video 0 gets DFS; the others
    take frames 0 and 1 as PSA's two queries, hide no key, and get u = v in the codebook."""
    batch = _batch(n=5, frames=12)
    context = _context("move", options={"dfs_scope": "first_sample", "lower_bound": 3.0})
    masks = dfs_masks(batch.targets, 12, context)
    assert masks.query[0].sum(1).min() >= 3 and masks.key[0].sum() < 12
    onehot = torch.zeros(2, 12)
    onehot[0, 0] = onehot[1, 1] = 1
    for video in range(1, 5):
        torch.testing.assert_close(masks.query[video], onehot)
        assert torch.all(masks.key[video] == 1) and torch.all(masks.codebook[video] == 1)
    model = _model(context)
    views = model.aggregate_views(batch.x, masks.query, masks.key, masks.codebook)
    psa_dim = 16
    torch.testing.assert_close(views[1:, 0, psa_dim:], views[1:, 1, psa_dim:])  # codebook u = v
    frame_queries, _ = model.psa(batch.x, onehot.expand(5, 2, 12))
    torch.testing.assert_close(views[1:, :, :psa_dim], frame_queries[1:])
    assert not torch.allclose(views[0, 0], views[0, 1])  # video 0: two DFS views differ


def test_per_sample_dfs_is_the_default():
    batch = _batch(n=5, frames=12)
    context = _context("move")
    assert context.options.dfs_scope == "per_sample"
    masks = dfs_masks(batch.targets, 12, context)
    assert not any(torch.equal(masks.query[v, 0], torch.eye(12)[0]) for v in range(5))
