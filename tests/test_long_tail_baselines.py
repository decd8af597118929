"""The long-tail baselines since 2020 (``move/training/methods/logit_adjustment.py``,
``decoupling.py``, ``weight_balancing.py``): each against its published equations, written out
here independently of the code (the comparisons with the authors' own code, which CI has not,
are recorded in the docs), and each trained through ``move train``.

Logit adjustment: Menon et al. ICLR 2021, Eq. 9 (post-hoc) and Eq. 10 (loss); Ren et al. NeurIPS
2020, Eq. 4 (Balanced Softmax). Decoupling: Kang et al. ICLR 2020, Sec. 4 (cRT, tau-norm, LWS).
Weight balancing: Alshammari et al. CVPR 2022, Eq. 3 (MaxNorm) and their class-balanced loss.
"""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from move.cli import main
from move.datasets.synthetic import SyntheticSpec, make_synthetic_features
from move.errors import MoveError
from move.training.artefacts import load_checkpoint
from move.training.context import Batch
from move.training.losses import class_balanced_weights
from move.training.methods import extended_variants, get_method, variant_settings
from move.training.methods import logit_adjustment as la
from move.training.methods.decoupling import (
    build_lws,
    build_tau_norm,
    normalised_weight,
    stage_sampler,
)
from move.training.methods.weight_balancing import (
    class_balanced_softmax_loss,
    max_norm_threshold,
    project_max_norm,
)
from move.training.metrics import evaluate
from move.training.model import VideoClassifier
from tests.conftest import make_context, tiny_train

COUNTS = np.array([40, 20, 8, 3, 1])
SMALL = dict(
    feature_dim=16, heads=2, d_k=4, d_v=4, clusters=3, codebook_dim=8, hidden_dim=12, lr=1e-3
)
METHODS = ("logit_adjusted_loss", "logit_adjustment_post_hoc", "crt", "tau_norm", "lws")
METHODS += ("weight_balancing",)


def _context(method, options=None, epoch=1, videos=70, **settings):
    values = dict(SMALL, method=method, aggregators=True) | settings | {method: options or {}}
    context = make_context(values, COUNTS, epoch)
    context.videos = videos
    return context


def _single_label(n=12, classes=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=generator) * 2
    labels = torch.randint(0, classes, (n,), generator=generator)
    return logits, labels, F.one_hot(labels, classes).float()


# --- logit adjustment / Balanced Softmax -------------------------------------------------------
def test_the_prior_is_the_label_frequency_or_its_log_odds():
    softmax = la.log_prior(COUNTS, 70, "softmax")
    torch.testing.assert_close(softmax, torch.tensor(np.log(COUNTS / COUNTS.sum())).float())
    sigmoid = la.log_prior(COUNTS, 70, "sigmoid")
    pi = COUNTS / 70
    torch.testing.assert_close(sigmoid, torch.tensor(np.log(pi / (1 - pi))).float())
    # a class without training videos counts as one (finite prior)
    assert torch.isfinite(la.log_prior(np.array([5, 0]), 5, "sigmoid")).all()


@pytest.mark.parametrize("tau", [1.0, 0.5, 2.0])
def test_softmax_form_is_menon_eq_10_and_balanced_softmax_at_tau_1(tau):
    logits, labels, targets = _single_label()
    pi = COUNTS / COUNTS.sum()
    expected = []
    for row, y in zip(logits.double().tolist(), labels.tolist(), strict=True):
        terms = [math.exp(z + tau * math.log(p)) for z, p in zip(row, pi, strict=True)]
        expected.append(-math.log(terms[y] / sum(terms)))  # Eq. 10, term by term
    prior = la.log_prior(COUNTS, int(COUNTS.sum()), "softmax")
    loss = la.logit_adjusted_loss(logits, targets, prior, tau, "softmax")
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-5)
    if tau == 1.0:  # Ren et al. Eq. 4: phi_y = n_y exp(z_y) / sum_j n_j exp(z_j)
        balanced = [
            -math.log(COUNTS[y] * math.exp(row[y]) / sum(COUNTS * np.exp(row)))
            for row, y in zip(logits.double().numpy(), labels.tolist(), strict=True)
        ]
        assert loss.item() == pytest.approx(np.mean(balanced), rel=1e-5)


def test_sigmoid_form_is_eq_10_on_each_class_binary_problem():
    """Per class c: logits (0, z_c), priors (1 - pi_c, pi_c); Eq. 10 on that pair, averaged."""
    logits, _, targets = _single_label()
    targets[0, 3] = 1  # multi-label rows are fine in this form
    tau, videos = 1.0, 70
    pi = COUNTS / videos
    expected = []
    for row, target in zip(logits.double().numpy(), targets.numpy(), strict=True):
        for z, y, p in zip(row, target, pi, strict=True):
            negative, positive = math.log(1 - p) * tau, z + tau * math.log(p)
            chosen = positive if y == 1 else negative
            expected.append(-(chosen - math.log(math.exp(negative) + math.exp(positive))))
    prior = la.log_prior(COUNTS, videos, "sigmoid")
    loss = la.logit_adjusted_loss(logits, targets, prior, tau, "sigmoid")
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-5)


def test_post_hoc_is_eq_9_and_moves_top1_to_the_tail_but_never_a_class_ap():
    context = _context("logit_adjustment_post_hoc")
    method = get_method("logit_adjustment_post_hoc")
    torch.manual_seed(0)
    model = method.build_model(5, context.settings, context.options)
    method.configure_optimizer(model, context)  # stores the run's prior in the model
    x = torch.randn(40, 6, 16)
    model.eval()
    raw = VideoClassifier.forward(model, x)
    adjusted = model(x)
    prior = torch.tensor(np.log((COUNTS / 70) / (1 - COUNTS / 70))).float()
    torch.testing.assert_close(adjusted, raw - prior)  # Eq. 9 with tau = 1
    model.train()
    torch.manual_seed(1)
    trained = model(x)
    torch.manual_seed(1)
    torch.testing.assert_close(trained, VideoClassifier.forward(model, x))  # plain in training
    model.eval()
    targets = F.one_hot(torch.arange(40) % 5, 5).numpy()
    groups = np.array(["head", "head", "medium", "tail", "tail"])
    before = evaluate(torch.sigmoid(raw).detach().numpy(), targets, groups)
    after = evaluate(torch.sigmoid(adjusted).detach().numpy(), targets, groups)
    np.testing.assert_allclose(after["per_class_AP"], before["per_class_AP"])
    assert (adjusted.argmax(1) >= 3).sum() > (raw.argmax(1) >= 3).sum()  # towards the tail


def test_loss_form_trains_on_adjusted_logits_and_evaluates_plain_ones():
    context = _context("logit_adjusted_loss", {"form": "softmax"}, videos=72)
    method = get_method("logit_adjusted_loss")
    torch.manual_seed(0)
    model = method.build_model(5, context.settings, context.options)
    method.configure_optimizer(model, context)
    logits, _, targets = _single_label()
    batch = Batch(torch.zeros(12, 2, 16), targets, torch.arange(12), torch.full((12,), -1))
    loss = method.loss(logits, targets, batch, context)
    expected = F.cross_entropy(
        logits + torch.log(torch.tensor(COUNTS / 72.0)).float(), targets.argmax(1)
    )
    torch.testing.assert_close(loss, expected)
    x = torch.randn(4, 6, 16)
    model.eval()
    torch.testing.assert_close(model(x), VideoClassifier.forward(model, x).log_softmax(1))
    targets[0, 2] = 1
    with pytest.raises(MoveError, match="one label per video.*form: sigmoid"):
        method.loss(logits, targets, batch, context)


# --- decoupling: tau-norm, LWS, cRT ------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.0, 0.7, 1.0, 2.0])
def test_tau_norm_divides_each_class_row_by_its_norm_to_the_tau(tau):
    weight = torch.randn(5, 12) * torch.arange(1, 6).float()[:, None]
    expected = torch.stack([row / row.norm() ** tau for row in weight])
    torch.testing.assert_close(normalised_weight(weight, tau), expected)


@pytest.mark.parametrize("aggregators", [True, False])
def test_tau_norm_evaluates_without_bias_and_leaves_every_class_ap(aggregators):
    context = _context("tau_norm", {"tau": 1.0}, aggregators=aggregators)
    torch.manual_seed(0)
    model = build_tau_norm(5, context.settings, context.options)
    x = torch.randn(30, 6, 16)
    model.eval()
    last = model.classifier[-1]
    hidden = model.classifier[:-1](model.represent(x))
    expected = hidden @ (last.weight / last.weight.norm(dim=1, keepdim=True)).T
    expected = expected if aggregators else expected.mean(1)
    torch.testing.assert_close(model(x), expected)
    plain = VideoClassifier.head(model, model.represent(x))
    targets = F.one_hot(torch.arange(30) % 5, 5).numpy()
    groups = np.array(["head"] * 2 + ["medium"] + ["tail"] * 2)
    ours = evaluate(torch.sigmoid(model(x)).detach().numpy(), targets, groups)
    base = evaluate(torch.sigmoid(plain).detach().numpy(), targets, groups)
    np.testing.assert_allclose(ours["per_class_AP"], base["per_class_AP"])
    model.train()
    torch.manual_seed(1)
    trained = model(x)
    torch.manual_seed(1)
    torch.testing.assert_close(trained, VideoClassifier.forward(model, x))  # training: as before


def test_lws_scales_the_biased_logits_per_class():
    context = _context("lws", {"retrain_epoch": 1}, epochs=3)
    torch.manual_seed(0)
    model = build_lws(5, context.settings, context.options).eval()
    with torch.no_grad():
        model.scales.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0]))
    x = torch.randn(4, 6, 16)
    plain = VideoClassifier.head(model, model.represent(x))
    torch.testing.assert_close(model(x), plain * model.scales)


def test_stage_two_samples_class_balanced_and_stage_one_shuffles():
    labels = [[0]] * 50 + [[1]] * 5 + [[2]]
    options = get_method("crt").options({"retrain_epoch": 2})
    rng = np.random.default_rng(0)
    first, anchors = stage_sampler(labels, 3, rng, 1, options)
    assert sorted(first) == list(range(56)) and anchors is None
    order, anchors = stage_sampler(labels, 3, rng, 2, options)
    assert len(order) == 56 and np.bincount(anchors, minlength=3).min() >= 10  # ~56 / 3 each


def test_a_stage_two_that_would_never_run_is_refused():
    context = _context("crt", {"retrain_epoch": 5}, epoch=0, epochs=5)
    with pytest.raises(MoveError, match=r"train\.crt\.retrain_epoch is 5 but train\.epochs is 5"):
        get_method("crt").configure_optimizer(VideoClassifier(5, context.settings.model), context)


# --- weight balancing --------------------------------------------------------------------------
def test_max_norm_threshold_and_projection_are_eq_3():
    weight = torch.randn(6, 10) * torch.linspace(3, 0.2, 6)[:, None]
    norms = [row.norm().item() for row in weight]
    delta = min(norms) + 0.1 * (max(norms) - min(norms))
    assert max_norm_threshold(weight, 0.1).item() == pytest.approx(delta, rel=1e-6)
    projected = weight.clone()
    project_max_norm(projected, torch.tensor(delta))
    for before, after, norm in zip(weight, projected, norms, strict=True):
        expected = before * (delta / norm) if norm > delta else before
        torch.testing.assert_close(after, expected)
    assert projected.norm(dim=1).max().item() <= delta + 1e-5


def test_stage_two_loss_is_the_authors_class_balanced_softmax_bce():
    logits, labels, targets = _single_label()
    weights = class_balanced_weights(COUNTS, 0.9999)
    n = 1 - 0.9999 ** COUNTS.astype(float)
    by_hand = (1 - 0.9999) / n
    by_hand = by_hand / by_hand.sum() * 5
    torch.testing.assert_close(weights, torch.tensor(by_hand).float())
    p = logits.double().softmax(1).numpy()
    terms = [
        -by_hand[y] * (t * np.log(q) + (1 - t) * np.log(1 - q))
        for row, y, target in zip(p, labels.tolist(), targets.numpy(), strict=True)
        for q, t in zip(row, target, strict=True)
    ]
    loss = class_balanced_softmax_loss(logits, targets, weights)
    assert loss.item() == pytest.approx(np.mean(terms), rel=1e-5)


# --- each method through `move train`, with and without the aggregators ------------------------
@pytest.fixture(scope="module")
def features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("long_tail")
    spec = SyntheticSpec(
        classes=5, n_max=16, imbalance_ratio=0.1, test_per_class=3, frames=6, dim=16,
        multi_label=0.2, seed=0,
    )  # fmt: skip
    make_synthetic_features(folder / "f.h5", folder / "split.csv", spec)
    return folder / "f.h5", folder / "split.csv"


def test_the_extended_variants_are_registered_with_and_without_aggregators():
    expected = ("logit_adjusted_loss", "logit_adjustment_post_hoc", "crt", "tau_norm", "lws")
    assert extended_variants() == tuple(
        v for m in expected + ("weight_balancing",) for v in (m, f"{m}_agg")
    )
    assert variant_settings("crt_agg") == {"method": "crt", "aggregators": True}


@pytest.mark.parametrize("variant", [v for m in METHODS for v in (m, f"{m}_agg")])
def test_each_method_trains_through_move_train(variant, features, tmp_path):
    method = variant_settings(variant)["method"]
    stage_two = {"retrain_epoch": 2} if method in ("crt", "lws", "weight_balancing") else {}
    settings = tiny_train(epochs=3) | ({method: stage_two} if stage_two else {})
    out, checkpoint = tmp_path / "r.json", tmp_path / "r.pt"
    code = main(
        ["train", "--features", str(features[0]), "--split", str(features[1]), "--out", str(out),
         "--checkpoint", str(checkpoint), "--settings", json.dumps(settings), "--method", variant,
         "--head-min", "10", "--tail-max", "3", "--quiet"]
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    assert results["variant"] == variant and results["final"]["tail_mAP"] is not None
    assert results["settings"][method] == json.loads(json.dumps(results["settings"][method]))
    # the checkpoint reloads into the method's own network and scores as the run did
    state = load_checkpoint(checkpoint)
    assert isinstance(state.build_model(), VideoClassifier)
    assert state.settings.method == method


@pytest.mark.parametrize("method", ["crt", "lws", "weight_balancing"])
def test_stage_two_learns_only_the_classifier_in_the_same_job(method, features):
    """Epoch 0 (stage one) trains everything; epoch 1 (stage two) only the last layer (cRT, weight
    balancing: re-initialised for cRT, MaxNorm-projected after the epoch for weight balancing)
    or only the per-class scales (LWS)."""
    from tqdm import tqdm

    from move.training.loading import load_problem
    from move.training.loop import Run
    from move.training.methods import resolve_settings
    from move.training.settings import TrainSettings

    settings = TrainSettings.from_dict(
        tiny_train(epochs=2, eval_every=2, method=method, aggregators=True, feature_dim=16)
        | {method: {"retrain_epoch": 1}}
    )
    method_, settings = resolve_settings(settings)
    run = Run(load_problem(features[1], features[0], 10, 3), features[0], settings, method_)
    snapshot = lambda: {k: v.clone() for k, v in run.model.state_dict().items()}  # noqa: E731
    start = snapshot()
    run.run_epoch(0, tqdm(disable=True))
    after_one = snapshot()
    run.run_epoch(1, tqdm(disable=True))
    after_two = snapshot()
    learnt = {"crt": "classifier.3.", "weight_balancing": "classifier.3.", "lws": "scales"}[method]
    for name, value in after_two.items():
        if not value.is_floating_point() or "running" in name:
            continue  # BatchNorm statistics move in training mode, as the authors' frozen nets
        if name.startswith(learnt):
            assert not torch.equal(value, after_one[name]), name
        else:
            assert torch.equal(value, after_one[name]), name
    assert not torch.equal(start["psa.query.weight"], after_one["psa.query.weight"])
    if method == "lws":
        assert torch.equal(after_one["scales"], torch.ones(5))  # held at 1 in stage one
    if method == "weight_balancing":
        delta = run.context.state["max_norm_delta"]
        assert delta == pytest.approx(
            max_norm_threshold(after_one["classifier.3.weight"], 0.1).item()
        )
        assert after_two["classifier.3.weight"].norm(dim=1).max().item() <= delta + 1e-5


# --- the extended table through the workflow ---------------------------------------------------
EXTENDED_CONFIG = {"seeds": [0, 1, 2], "backbones": ["resnet50", "resnet101"]}


def test_extended_table_plans_each_method_aggregators_backbone_ir_and_seed_once(tmp_path):
    """`snakemake -n results/demo_extended.md results/demo_paper.md`: one train job per (variant,
    backbone, IR, seed), the paper table's runs shared with the extended table's."""
    import re

    import yaml

    from move.reporting.paper import paper_rows
    from tests.snakemake_runs import TINY_CONFIG, merged_config, planned_jobs, snakemake

    config = merged_config({**TINY_CONFIG, **EXTENDED_CONFIG})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(tmp_path, "-n", "results/demo_extended.md", "results/demo_paper.md")
    assert plan.returncode == 0, plan.stderr[-3000:]
    trained = re.findall(r"Training (\w+) on (demo/\w+/ir[\d.]+), seed (\d+)", plan.stdout)
    rows = list(paper_rows("demo")) + list(extended_variants())
    expected = {
        (variant, f"demo/{backbone}/ir0.5", str(seed))
        for variant in rows
        for backbone in ("resnet50", "resnet101")
        for seed in (0, 1, 2)
    }
    assert len(trained) == len(set(trained)) == len(expected) == 19 * 2 * 3
    assert set(trained) == expected
    jobs = planned_jobs(plan.stdout)
    assert jobs["train"] == 114 and jobs["extended_table"] == jobs["paper_table"] == 1


@pytest.mark.slow
def test_extended_table_through_the_workflow(tmp_path):
    """The extended table built end to end: the paper rows asked for and every new baseline with
    and without aggregators, each trained once. One seed keeps this under the full suite's budget
    (26 trainings took 515 s under load); cells over several seeds are the paper table's code,
    tested in test_workflow_seeds.py, and planning each (variant, seed) once is tested above."""
    import pandas as pd
    import yaml

    from tests.snakemake_runs import TINY_CONFIG, merged_config, snakemake

    overrides = {**TINY_CONFIG, "seeds": [0], "paper_table": {"rows": ["plain"]}}
    overrides["backbones"] = ["resnet50"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(merged_config(overrides)))
    done = snakemake(tmp_path, "results/demo_extended.md")
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/demo_extended.csv")
    assert table.variant.drop_duplicates().tolist() == ["plain", *extended_variants()]
    runs = tmp_path / "results/demo/resnet50/ir0.5"
    for variant in ("plain", *extended_variants()):
        result = json.loads((runs / variant / "seed0.json").read_text())
        cell = table[
            (table.variant == variant) & (table.protocol == "final") & (table.metric == "mAP")
        ]
        assert len(cell) == 1 and cell.iloc[0]["n"] == 1, variant
        assert cell.iloc[0]["mean"] == pytest.approx(result["final"]["mAP"], abs=5e-4), variant
    markdown = (tmp_path / "results/demo_extended.md").read_text()
    for display in ("Logit-adjusted loss", "cRT", "τ-norm", "LWS", "Weight balancing"):
        assert f"| {display} | ✗ |" in markdown and f"| {display} | ✓ |" in markdown
