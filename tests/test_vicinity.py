import torch

from move.vicinity import (
    calibrated_interpolation,
    dynamic_extrapolation,
    dynamic_frame_mask,
    sample_extrapolation_weight,
    sample_interpolation_weight,
    sample_tau,
    tail_weighted_criterion,
)


def test_tau_is_min_max_normalised_counts():
    tau = tail_weighted_criterion(torch.tensor([400, 100, 4, 202]))
    torch.testing.assert_close(tau, torch.tensor([1.0, 96 / 396, 0.0, 0.5]))


def test_tau_of_equal_counts_is_one():
    assert torch.all(tail_weighted_criterion(torch.tensor([5, 5, 5])) == 1)


def test_sample_tau_takes_rarest_label():
    tau = torch.tensor([1.0, 0.2, 0.6])
    targets = torch.tensor([[1, 0, 0], [1, 0, 1], [0, 1, 1.0]])
    torch.testing.assert_close(sample_tau(tau, targets), torch.tensor([1.0, 0.6, 0.2]))


def test_dfs_kept_frames_within_bounds():
    generator = torch.Generator().manual_seed(0)
    n_frames, lower_bound = 60, 3.0
    s_tau = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0] * 40)
    for _ in range(20):
        mask = dynamic_frame_mask(s_tau, n_frames, lower_bound, generator)
        kept = mask.sum(1)
        low = torch.clamp(
            torch.maximum(torch.floor(s_tau * n_frames), torch.tensor(lower_bound)), max=n_frames
        )
        assert torch.all(kept >= low) and torch.all(kept <= n_frames)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
    head = dynamic_frame_mask(torch.ones(100), n_frames, lower_bound, generator)
    assert torch.all(head.sum(1) == n_frames)  # tau = 1 keeps every frame


def test_dfs_tail_masks_vary_more_than_head_masks():
    generator = torch.Generator().manual_seed(1)
    tail = dynamic_frame_mask(torch.zeros(500), 30, 3.0, generator).sum(1)
    head = dynamic_frame_mask(torch.full((500,), 0.9), 30, 3.0, generator).sum(1)
    assert tail.std() > 3 * head.std()


def test_dfs_lower_bound_caps_at_frame_count():
    mask = dynamic_frame_mask(torch.zeros(10), 2, 3.0, torch.Generator().manual_seed(0))
    assert torch.all(mask.sum(1) == 2)


def test_extrapolation_weights_in_one_to_two_and_formula():
    generator = torch.Generator().manual_seed(0)
    omegas = [sample_extrapolation_weight(2.0, generator) for _ in range(500)]
    assert min(omegas) >= 1 and max(omegas) <= 2
    assert abs(sum(omegas) / len(omegas) - 1.5) < 0.05
    u, v = torch.randn(4, 6), torch.randn(4, 6)
    torch.testing.assert_close(dynamic_extrapolation(u, v, 1.3), u + 0.3 * (u - v))


def test_interpolation_weight_in_unit_interval():
    generator = torch.Generator().manual_seed(0)
    lams = [sample_interpolation_weight(1.0, generator) for _ in range(200)]
    assert 0 <= min(lams) and max(lams) <= 1


def test_calibrated_labels_equal_formula_and_stay_in_unit_interval():
    z = torch.randn(4, 5)
    y = torch.eye(4, 3)
    y[3, 0] = 1
    tau = torch.tensor([1.0, 0.3, 0.0])
    permutation = torch.tensor([1, 2, 3, 0])
    mixed, labels = calibrated_interpolation(z, y, tau, 0.7, permutation, calib_bias=0.5)
    torch.testing.assert_close(mixed, 0.7 * z + 0.3 * z[permutation])
    expected = ((0.7 * y + 0.3 * y[permutation]) * ((1 - tau) + 0.5)).clamp(max=1)
    torch.testing.assert_close(labels, expected)
    assert labels.min() >= 0 and labels.max() <= 1
    assert labels[2, 2] == 1.0  # tail class weight 1.5 * 0.7 clipped to 1
    torch.testing.assert_close(labels[0, 0], torch.tensor(0.7 * 0.5))  # head class shrunk
