"""Baselines of Tables 1-3: each method finite with gradients flowing, and the losses' formulas."""

import math

import numpy as np
import pytest
import torch

from move.errors import MoveError
from move.training.context import Batch
from move.training.losses import (
    anchor_masked_bce,
    bce_loss,
    class_balanced_draws,
    class_balanced_weights,
    drw_weights,
    eql_loss,
    focal_loss,
    framestack,
    ldam_loss,
    ldam_margins,
    mixup,
)
from move.training.methods import get_method, method_names, resolve_settings
from move.training.model import ModelSettings, VideoClassifier
from move.training.settings import TrainSettings
from tests.conftest import make_context

COUNTS = np.array([40, 20, 8, 3, 1])
SMALL = dict(
    feature_dim=16, heads=2, d_k=4, d_v=4, clusters=3, codebook_dim=8, hidden_dim=12, lr=1e-3
)


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 8, 16, generator=generator)
    y = torch.zeros(6, 5)
    y[torch.arange(6), torch.tensor([0, 1, 2, 3, 4, 0])] = 1
    y[5, 3] = 1  # one multi-label sample
    return x, y


VARIANTS = [(m, a) for m in method_names() for a in (False, True) if (m, a) != ("move", False)]


def test_move_without_aggregators_is_refused():
    with pytest.raises(MoveError, match="aggregators"):
        resolve_settings(TrainSettings.from_dict({"method": "move", "aggregators": False}))


@pytest.mark.parametrize(("method", "aggregators"), VARIANTS)
def test_every_method_is_finite_and_its_gradient_flows(method, aggregators):
    values = dict(SMALL, method=method, aggregators=aggregators, ldam_drw={"drw_epoch": 0})
    state = {"class_ap": torch.tensor([0.9, 0.5, 0.2, 0.1, 0.0])}
    context = make_context(values, COUNTS, state=state)
    torch.manual_seed(0)
    model = VideoClassifier(5, context.settings.model).train()
    x, y = _batch()
    batch = Batch(x, y, torch.arange(6), torch.tensor([0, 1, 2, 3, 4, 3]))
    registered = get_method(method)
    logits, targets = registered.transform(model, batch, context)
    loss = registered.loss(logits, targets, batch, context)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads if g is not None)
    first, last = model.classifier[0].weight.grad, model.classifier[-1].weight.grad
    assert first.abs().sum() > 0 and last.abs().sum() > 0
    if aggregators:
        assert model.psa.query.weight.grad.abs().sum() > 0
        assert model.codebook.project.weight.grad.abs().sum() > 0


def test_focal_loss_with_gamma_one_by_hand():
    """Framestack's loss: (1 - p_t) * BCE per entry, p_t = exp(-BCE), mean (SPEC: gamma = 1)."""
    logits, targets = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    bce_pos, bce_neg = math.log(2), math.log(1 + math.e**2)  # 0.6931, 2.1269
    expected = (0.5 * bce_pos + (1 - math.exp(-bce_neg)) * bce_neg) / 2  # (0.3466 + 1.8734) / 2
    assert float(focal_loss(logits, targets, gamma=1.0)) == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(1.1100, abs=1e-4)
    torch.testing.assert_close(focal_loss(logits, targets, gamma=0.0), bce_loss(logits, targets))


def test_cbs_loss_masks_other_positives_and_sums_over_classes():
    """CBS: a video drawn for class 0 that is also class 1: class 1 leaves the loss; the rest is
    summed over classes and averaged over the batch."""
    logits = torch.zeros(2, 3)
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    loss = anchor_masked_bce(logits, targets, torch.tensor([0, 2]))
    # every entry's BCE at logit 0 is log 2: video 0 keeps 2 of 3 classes, video 1 all 3
    assert float(loss) == pytest.approx((2 + 3) * math.log(2) / 2, rel=1e-6)
    plain = anchor_masked_bce(logits, targets, torch.tensor([1, 2]))
    assert float(plain) == pytest.approx(float(loss))  # which positive anchors: same count


def test_class_balanced_weights_formula():
    weights = class_balanced_weights(COUNTS, beta=0.99)
    raw = (1 - 0.99) / (1 - 0.99 ** COUNTS.astype(float))
    torch.testing.assert_close(weights, torch.tensor(raw / raw.sum() * 5, dtype=torch.float32))
    assert weights[-1] > weights[0] and abs(float(weights.sum()) - 5) < 1e-4


def test_drw_is_uniform_before_the_step_epoch():
    torch.testing.assert_close(drw_weights(COUNTS, 3, 10), torch.ones(5))
    assert drw_weights(COUNTS, 10, 10)[-1] > 1


def test_ldam_margins_and_loss_shift_only_positive_logits():
    margins = ldam_margins(COUNTS, 0.5)
    assert float(margins.max()) == pytest.approx(0.5) and margins[-1] == margins.max()
    torch.testing.assert_close(margins[0] / margins[-1], torch.tensor(40.0**-0.25))
    logits, y = torch.zeros(2, 5), torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0.0]])
    shifted = logits.clone()
    shifted[0, 0] -= margins[0]
    expected = bce_loss(30 * shifted, y)
    torch.testing.assert_close(ldam_loss(logits, y, margins, 30.0), expected)


def test_eql_ignores_only_tail_negatives():
    logits = torch.randn(4, 5)
    y = torch.zeros(4, 5)
    y[:, 0] = 1
    tail = torch.tensor([0, 0, 0, 1, 1.0])
    full = eql_loss(logits, y, tail, gamma=1.0)  # every tail negative dropped
    weight = torch.ones(4, 5)
    weight[:, 3:] = 0
    torch.testing.assert_close(full, bce_loss(logits, y, weight))
    torch.testing.assert_close(eql_loss(logits, y, tail, gamma=0.0), bce_loss(logits, y))


def test_mixup_mixes_inputs_and_labels():
    x, y = _batch()
    permutation = torch.tensor([1, 2, 3, 4, 5, 0])
    mixed, labels = mixup(x, y, 0.3, permutation)
    torch.testing.assert_close(mixed, 0.3 * x + 0.7 * x[permutation])
    torch.testing.assert_close(labels, 0.3 * y + 0.7 * y[permutation])


def test_framestack_takes_more_partner_frames_when_own_class_is_learned():
    x = torch.stack([torch.zeros(10, 2), torch.ones(10, 2)])
    y = torch.tensor([[1, 0.0], [0, 1.0]])
    ap = torch.tensor([0.8, 0.2])
    stacked, labels = framestack(x, y, ap, torch.tensor([1, 0]))
    assert stacked.shape == x.shape
    # video 0 (AP 0.8) gives 8 of its 10 places to video 1's frames, which come first
    assert stacked[0, :8].eq(1).all() and stacked[0, 8:].eq(0).all()
    torch.testing.assert_close(labels[0], torch.tensor([0.2, 0.8]))
    same, labels_same = framestack(x, y, torch.zeros(2), torch.tensor([1, 0]))
    assert same[0, :5].eq(1).all()  # no AP yet: half and half
    torch.testing.assert_close(labels_same[0], torch.tensor([0.5, 0.5]))


def test_class_balanced_sampling_evens_out_classes_and_names_the_class():
    labels = [[0]] * 90 + [[1]] * 9 + [[2]] + [[1, 2]]
    picked, classes = class_balanced_draws(labels, 3000, np.random.default_rng(0))
    assert all(c in labels[i] for i, c in zip(picked, classes, strict=True))
    shares = np.bincount(classes, minlength=3) / len(classes)
    assert np.all(np.abs(shares - 1 / 3) < 0.05)


def test_model_settings_default_is_the_authors_architecture():
    settings = ModelSettings()
    assert (settings.heads, settings.d_k, settings.clusters, settings.codebook_dim) == (
        4,
        512,
        64,
        1024,
    )
    assert VideoClassifier(7, settings).representation_dim == 3072
