import torch

from move.training.model import (
    CodebookAggregator,
    ModelSettings,
    NetVLAGD,
    PrototypicalSelfAttention,
    VideoClassifier,
)

SMALL = ModelSettings(
    feature_dim=32, heads=4, d_k=8, d_v=8, clusters=5, codebook_dim=16, hidden_dim=24
)


def test_psa_gives_one_prototype_and_attention_summing_to_one():
    psa = PrototypicalSelfAttention(dim=32, heads=4, d_k=8, d_v=8).eval()
    x = torch.randn(3, 7, 32)
    prototype, attention = psa(x)
    assert prototype.shape == (3, 32)
    assert attention.shape == (3, 4, 7)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 4))


def test_psa_key_mask_gives_zero_attention_to_masked_frames():
    psa = PrototypicalSelfAttention(dim=32, heads=2, d_k=8, d_v=8).eval()
    mask = torch.tensor([[1, 0, 1, 0, 1.0]])
    _, attention = psa(torch.randn(1, 5, 32), key_mask=mask)
    assert torch.all(attention[..., 1] == 0) and torch.all(attention[..., 3] == 0)


def test_psa_query_is_the_masked_mean():
    psa = PrototypicalSelfAttention(dim=32, heads=2, d_k=8, d_v=8).eval()
    x = torch.randn(1, 4, 32)
    x_changed = x.clone()
    x_changed[0, 3] += 100  # a frame outside both masks changes nothing
    mask = torch.tensor([[1, 1, 1, 0.0]])
    a, _ = psa(x, query_mask=mask, key_mask=mask)
    b, _ = psa(x_changed, query_mask=mask, key_mask=mask)
    torch.testing.assert_close(a, b)


def test_netvlagd_output_is_l2_normalised():
    vlad = NetVLAGD(dim=32, clusters=5).eval()
    out = vlad(torch.randn(2, 6, 32))
    assert out.shape == (2, 5 * 32)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_netvlad_with_centres_is_normalised_and_assignment_sums_to_one():
    vlad = NetVLAGD(dim=32, clusters=5, centres=True).eval()
    x = torch.randn(2, 6, 32)
    torch.testing.assert_close(vlad.assignment(x).sum(-1), torch.ones(2, 6))
    torch.testing.assert_close(vlad(x).norm(dim=1), torch.ones(2))


def test_codebook_aggregator_output_in_relu6_range():
    aggregator = CodebookAggregator(dim=32, clusters=5, out_dim=16)
    out = aggregator(torch.randn(4, 6, 32))
    assert out.shape == (4, 16) and out.min() >= 0 and out.max() <= 6


def test_classifier_with_and_without_aggregators():
    x = torch.randn(3, 6, 32)
    with_agg = VideoClassifier(7, SMALL).eval()
    assert with_agg.aggregate(x).shape == (3, 32 + 16)
    assert with_agg(x).shape == (3, 7)
    without = VideoClassifier(7, ModelSettings(**{**SMALL.__dict__, "aggregators": False})).eval()
    assert without(x).shape == (3, 7)
    torch.testing.assert_close(without(x), without.classifier(x).mean(1))


def test_psa_two_queries_give_two_prototypes_and_hidden_keys_get_no_attention():
    psa = PrototypicalSelfAttention(dim=32, heads=4, d_k=8, d_v=8).eval()
    x = torch.randn(2, 6, 32)
    query_masks = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1.0]]).expand(2, 2, 6)
    key_mask = torch.tensor([[1, 1, 1, 0, 1, 1.0], [1, 0, 1, 1, 1, 1.0]])
    prototypes, attention = psa(x, query_masks, key_mask)
    assert prototypes.shape == (2, 2, 32) and attention.shape == (2, 4, 2, 6)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, 2))
    assert torch.all(attention[0, :, :, 3] == 0) and torch.all(attention[1, :, :, 1] == 0)
    single, _ = psa(x, query_masks[:, 0], key_mask)
    torch.testing.assert_close(single, prototypes[:, 0])


def test_psa_with_every_key_hidden_attends_uniformly_as_the_code():
    psa = PrototypicalSelfAttention(dim=32, heads=2, d_k=8, d_v=8).eval()
    _, attention = psa(torch.randn(1, 5, 32), key_mask=torch.zeros(1, 5))
    torch.testing.assert_close(attention, torch.full((1, 2, 5), 0.2))


def test_codebook_views_zero_masked_frames_and_match_a_concatenated_batch():
    aggregator = CodebookAggregator(dim=32, clusters=5, out_dim=16).eval()
    x = torch.randn(3, 6, 32)
    masks = (torch.rand(3, 2, 6) > 0.4).float()
    views = aggregator(x, masks)
    assert views.shape == (3, 2, 16)
    torch.testing.assert_close(views[:, 1], aggregator(x, masks[:, 1]))
    changed = x.clone()
    changed[masks[:, 0] == 0] += 50.0  # frames outside view 0 leave it unchanged (eval BN)
    torch.testing.assert_close(aggregator(changed, masks[:, 0]), aggregator(x, masks[:, 0]))
    normed = aggregator.input_norm(x.reshape(-1, 32)).view(3, 6, 32) * masks[:, 0, :, None]
    reference = aggregator.project(aggregator.vlad(normed))
    reference = torch.nn.functional.relu6(aggregator.out_norm(reference))
    torch.testing.assert_close(aggregator(x, masks[:, 0]), reference)


def test_table4_switches_change_the_representation():
    x = torch.randn(2, 6, 32)
    only_psa = VideoClassifier(3, ModelSettings(**{**SMALL.__dict__, "codebook_attentive": False}))
    only_cb = VideoClassifier(3, ModelSettings(**{**SMALL.__dict__, "self_attentive": False}))
    assert only_psa.eval().aggregate(x).shape == (2, 32) and only_psa.codebook is None
    assert only_cb.eval().aggregate(x).shape == (2, 16) and only_cb.psa is None
    views = VideoClassifier(3, SMALL).aggregate_views(
        x, torch.ones(2, 2, 6), None, torch.ones(2, 2, 6)
    )
    assert views.shape == (2, 2, 48)


def test_netvlad_dfs_views_mask_the_assignment_eq10():
    """With classic NetVLAD (centres), a DFS view equals NetVLAD of the kept frames alone (eval
    BatchNorm): masked frames add nothing, not even -rho_k(0) c_k (Eq. 10)."""
    torch.manual_seed(0)
    aggregator = CodebookAggregator(dim=32, clusters=5, out_dim=16, kind="netvlad").eval()
    with torch.no_grad():
        aggregator.input_norm.running_mean.normal_()
        aggregator.vlad.centres.mul_(10)
    x = torch.randn(1, 6, 32)
    mask = torch.tensor([[1, 0, 1, 1, 0, 1.0]])
    kept = x[:, mask[0] == 1]
    torch.testing.assert_close(aggregator(x, mask), aggregator(kept))
    zeroed = aggregator.input_norm(x.reshape(-1, 32)).view(1, 6, 32) * mask[..., None]
    frames_zeroed = aggregator.project_descriptor(aggregator.vlad(zeroed))
    assert not torch.allclose(aggregator(x, mask), frames_zeroed, atol=1e-4)


def test_netvlagd_gates_start_xavier_normal_as_the_code():
    torch.manual_seed(0)
    gates = NetVLAGD(dim=2048, clusters=64).gates.detach()
    expected = (2 / (64 + 2048)) ** 0.5  # xavier-normal std of a [K, D] matrix, 0.0308
    assert abs(float(gates.std()) - expected) < 0.001
