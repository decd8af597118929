import torch

from move.training.vicinity import (
    calibrated_interpolation,
    calibration_factor,
    dfs_lower_bound,
    dynamic_extrapolation,
    dynamic_frame_mask,
    sample_extrapolation_weight,
    sample_interpolation_weight,
    tail_weighted_criterion,
)


def test_tau_is_min_max_normalised_counts():
    tau = tail_weighted_criterion(torch.tensor([400, 100, 4, 202]))
    torch.testing.assert_close(tau, torch.tensor([1.0, 96 / 396, 0.0, 0.5]))


def test_tau_of_equal_counts_is_one():
    assert torch.all(tail_weighted_criterion(torch.tensor([5, 5, 5])) == 1)


def test_dfs_lower_bound_is_max_of_floor_tau_t_and_sigma():
    tau = torch.tensor([1.0, 0.2, 0.01, 0.5])
    targets = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1.0]])
    low = dfs_lower_bound(tau, targets, 60, 3.0)
    # 60, floor(12), max(0.6, 3) = 3, and multi-label: mean over labels of max(tau T, 3) = 21
    assert low.tolist() == [60, 12, 3, 21]
    assert dfs_lower_bound(tau, targets, 2, 3.0).tolist() == [2, 2, 2, 2]  # capped at T


def test_dfs_kept_frames_within_bounds():
    generator = torch.Generator().manual_seed(0)
    n_frames, lower_bound = 60, 3.0
    tau = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    targets = torch.eye(5).repeat(40, 1)
    low = dfs_lower_bound(tau, targets, n_frames, lower_bound)
    expected_low = torch.clamp(
        torch.maximum(torch.floor(tau * n_frames), torch.tensor(lower_bound)), max=n_frames
    ).repeat(40)
    assert torch.equal(low.float(), expected_low)
    seen = set()
    for _ in range(50):
        mask = dynamic_frame_mask(low, n_frames, generator)
        kept = mask.sum(1)
        assert torch.all(kept >= low) and torch.all(kept <= n_frames)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        seen.update(kept[low == 3].long().tolist())
    assert min(seen) <= 5 and max(seen) >= 58  # the whole range [sigma, T] is drawn
    head = dynamic_frame_mask(torch.full((100,), n_frames), n_frames, generator)
    assert torch.all(head.sum(1) == n_frames)  # tau = 1 keeps every frame


def test_dfs_tail_masks_vary_more_than_head_masks():
    generator = torch.Generator().manual_seed(1)
    tail = dynamic_frame_mask(torch.full((500,), 3), 30, generator).sum(1)
    head = dynamic_frame_mask(torch.full((500,), 27), 30, generator).sum(1)
    assert tail.std() > 3 * head.std()


def test_dfs_same_generator_state_same_mask():
    low = torch.tensor([3, 10, 20])
    a = dynamic_frame_mask(low, 30, torch.Generator().manual_seed(5))
    b = dynamic_frame_mask(low, 30, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


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
    torch.testing.assert_close(calibration_factor(tau, 0.5), torch.tensor([0.5, 1.2, 1.5]))
    assert labels[2, 2] == 1.0  # tail class weight 1.5 * 0.7 clipped to 1
    torch.testing.assert_close(labels[0, 0], torch.tensor(0.7 * 0.5))  # head class shrunk
