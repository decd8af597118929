"""MOVE's network: the two learnable aggregators (PSA, codebook) and the classifier (Sec. 2).

Input per video: frame features ``[B, T, D]`` (D = 2048). Output: class logits ``[B, C]``.
``aggregate`` exposes the 3072-d video representation z (Eq. 4) so that MOVE's vicinity
(``move.training.vicinity``) can act on it during training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from move.training.settings import ModelSettings


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over frames of ``x [B, T, D]``, counting only frames where ``mask [B, T]`` is 1."""
    if mask is None:
        return x.mean(dim=1)
    weights = mask.unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class PrototypicalSelfAttention(nn.Module):
    """PSA (Eq. 1 with a pooled query): the mean frame attends to all frames -> one prototype.

    As the authors' code: multi-head scaled dot-product attention (4 heads, d_k = d_v = 512),
    attention dropout, output projection back to D with dropout, residual to the pooled query,
    LayerNorm.
    """

    def __init__(
        self, dim: int = 2048, heads: int = 4, d_k: int = 512, d_v: int = 512, dropout: float = 0.1
    ):
        super().__init__()
        self.heads, self.d_k, self.d_v = heads, d_k, d_v
        self.query = nn.Linear(dim, heads * d_k, bias=False)
        self.key = nn.Linear(dim, heads * d_k, bias=False)
        self.value = nn.Linear(dim, heads * d_v, bias=False)
        self.output = nn.Linear(heads * d_v, dim, bias=False)
        self.attention_dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(
        self,
        x: torch.Tensor,
        query_mask: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, T, D]`` -> (prototype ``[B, D]``, attention ``[B, heads, T]`` summing to 1).

        ``query_mask [B, T]`` pools the query over the kept frames only; ``[B, Q, T]`` gives Q
        queries and prototypes ``[B, Q, D]`` (attention ``[B, heads, Q, T]``), as MOVE's two
        DFS views. ``key_mask [B, T]`` hides frames from the keys with a -1e9 score, as the code
        (a row with every key hidden thus attends uniformly).
        """
        batch, frames, _ = x.shape
        single = query_mask is None or query_mask.dim() == 2
        if query_mask is None:
            pooled = x.mean(dim=1, keepdim=True)
        else:
            masks = query_mask if query_mask.dim() == 3 else query_mask.unsqueeze(1)
            pooled = torch.stack(
                [masked_mean(x, masks[:, i]) for i in range(masks.shape[1])], dim=1
            )
        n_queries = pooled.shape[1]
        q = self.query(pooled).view(batch, n_queries, self.heads, self.d_k).transpose(1, 2)
        k = self.key(x).view(batch, frames, self.heads, self.d_k).transpose(1, 2)
        v = self.value(x).view(batch, frames, self.heads, self.d_v).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # [B, heads, Q, T]
        if key_mask is not None:
            scores = scores.masked_fill(key_mask[:, None, None, :] == 0, -1e9)
        attention = scores.softmax(dim=-1)
        attended = (self.attention_dropout(attention) @ v).transpose(1, 2)  # [B, Q, heads, d_v]
        out = self.output_dropout(
            self.output(attended.reshape(batch, n_queries, self.heads * self.d_v))
        )
        out = self.norm(out + pooled)
        if single:
            return out.squeeze(1), attention.squeeze(2)
        return out, attention


class NetVLAGD(nn.Module):
    """Codebook aggregator as the authors' code: gated NetVLAD without centres (NetVLAGD).

    Soft assignment softmax(BN(W x)) over K clusters, assignment-weighted sum of frames, sigmoid
    gates per (cluster, dim), intra- then L2-normalised, flattened to K * D. ``centres=True`` gives
    the paper's classic NetVLAD (Eq. 2-3): residuals to learnable centres instead of gates.
    """

    def __init__(self, dim: int = 2048, clusters: int = 64, centres: bool = False):
        super().__init__()
        self.clusters, self.use_centres = clusters, centres
        self.assign = nn.Linear(dim, clusters, bias=False)
        self.assign_norm = nn.BatchNorm1d(clusters)
        if centres:
            self.centres = nn.Parameter(torch.randn(clusters, dim) / math.sqrt(dim))
        else:  # xavier-normal, std sqrt(2 / (K + D)), as the code's gate_weight
            self.gates = nn.Parameter(nn.init.xavier_normal_(torch.empty(clusters, dim)))

    def assignment(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 3: soft assignment rho_k(x_t) of each frame to each cluster, ``[B, T, K]``."""
        batch, frames, dim = x.shape
        logits = self.assign_norm(self.assign(x.reshape(batch * frames, dim)))
        return logits.softmax(dim=-1).view(batch, frames, self.clusters)

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, T, D]`` -> normalised descriptor ``[B, K * D]``.

        ``frame_mask [B, T]`` multiplies the assignment (Eq. 10), so masked frames add nothing;
        ``CodebookAggregator`` uses it for NetVLAD's DFS views, and zeroes frames for NetVLAGD.
        """
        rho = self.assignment(x)
        if frame_mask is not None:
            rho = rho * frame_mask.unsqueeze(-1)
        aggregated = rho.transpose(1, 2) @ x  # [B, K, D]
        if self.use_centres:
            aggregated = aggregated - rho.sum(dim=1).unsqueeze(-1) * self.centres  # Eq. 2
        else:
            aggregated = aggregated * torch.sigmoid(self.gates)
        aggregated = F.normalize(aggregated, dim=2)  # intra-normalisation
        return F.normalize(aggregated.flatten(1), dim=1)


class CodebookAggregator(nn.Module):
    """BatchNorm over input dims -> NetVLAGD (or NetVLAD) -> Linear(K*D -> 1024) -> BN -> ReLU6."""

    def __init__(
        self, dim: int = 2048, clusters: int = 64, out_dim: int = 1024, kind: str = "netvlagd"
    ):
        super().__init__()
        if kind not in ("netvlagd", "netvlad"):
            raise ValueError(f"codebook kind must be 'netvlagd' or 'netvlad', got {kind!r}")
        self.input_norm = nn.BatchNorm1d(dim)
        self.vlad = NetVLAGD(dim, clusters, centres=kind == "netvlad")
        self.project = nn.Linear(clusters * dim, out_dim, bias=False)
        self.out_norm = nn.BatchNorm1d(out_dim)

    def forward(
        self, x: torch.Tensor, frame_mask: torch.Tensor | None = None, detach: bool = False
    ) -> torch.Tensor:
        """``x [B, T, D]`` -> ``[B, out_dim]``.

        ``frame_mask [B, T]`` selects DFS's frames; ``[B, Q, T]`` gives Q views ``[B, Q, out_dim]``
        computed as one batch of Q*B videos, as the code concatenates its two views before
        NetVLAGD's BatchNorm. NetVLAGD (the code) zeroes the other frames after the input
        BatchNorm; they add nothing to its sums since it has no centres. NetVLAD masks the
        assignment instead (Eq. 10): a zeroed frame would still add -rho_k(0) c_k to every
        cluster. ``detach`` cuts the gradient to the input BatchNorm for masked views (the
        code's ``x.detach().clone()``).
        """
        batch, frames, dim = x.shape
        normed = self.input_norm(x.reshape(batch * frames, dim)).view(batch, frames, dim)
        if frame_mask is None:
            return self.project_descriptor(self.vlad(normed))
        if detach:
            normed = normed.detach()
        masks = frame_mask if frame_mask.dim() == 3 else frame_mask.unsqueeze(1)
        n_views = masks.shape[1]
        stacked = torch.cat([masks[:, i] for i in range(n_views)], dim=0)  # [Q*B, T]
        if self.vlad.use_centres:
            descriptor = self.vlad(normed.repeat(n_views, 1, 1), frame_mask=stacked)
        else:
            descriptor = self.vlad(normed.repeat(n_views, 1, 1) * stacked.unsqueeze(-1))
        out = self.project_descriptor(descriptor).view(n_views, batch, -1).transpose(0, 1)
        return out.squeeze(1) if frame_mask.dim() == 2 else out

    def project_descriptor(self, descriptor: torch.Tensor) -> torch.Tensor:
        """``[N, K*D]`` -> ``[N, out_dim]``: Linear (no bias), BatchNorm, ReLU6."""
        return F.relu6(self.out_norm(self.project(descriptor)))


class VideoClassifier(nn.Module):
    """Aggregators + classifier, or (``aggregators=False``) a per-frame classifier averaged over frames.

    With aggregators, ``self_attentive`` / ``codebook_attentive`` switch PSA and the codebook
    aggregator on or off (Table 4 rows b-d); z is their concatenation (Eq. 4).
    """

    def __init__(self, n_classes: int, settings: ModelSettings | None = None):
        super().__init__()
        settings = settings or ModelSettings()
        self.settings = settings
        dim = settings.feature_dim
        in_dim = 0
        self.psa: PrototypicalSelfAttention | None = None
        self.codebook: CodebookAggregator | None = None
        if settings.aggregators:
            if not (settings.self_attentive or settings.codebook_attentive):
                raise ValueError("aggregators=True needs self_attentive or codebook_attentive")
            if settings.self_attentive:
                self.psa = PrototypicalSelfAttention(
                    dim, settings.heads, settings.d_k, settings.d_v, settings.attention_dropout
                )
                in_dim += dim
            if settings.codebook_attentive:
                self.codebook = CodebookAggregator(
                    dim, settings.clusters, settings.codebook_dim, settings.codebook
                )
                in_dim += settings.codebook_dim
        else:
            in_dim = dim
        self.representation_dim = in_dim
        self.classifier = nn.Sequential(
            nn.Linear(in_dim, settings.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(settings.classifier_dropout),
            nn.Linear(settings.hidden_dim, n_classes),
        )

    def aggregate(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 4: z = PSA(x) (+) codebook(x), ``[B, 3072]`` by default."""
        parts = []
        if self.psa is not None:
            parts.append(self.psa(x)[0])
        if self.codebook is not None:
            parts.append(self.codebook(x))
        return torch.cat(parts, dim=1)

    def aggregate_views(
        self,
        x: torch.Tensor,
        query_masks: torch.Tensor,
        key_mask: torch.Tensor | None,
        codebook_masks: torch.Tensor,
    ) -> torch.Tensor:
        """Eq. 10: two (or Q) DFS views of each video -> prototypes ``[B, Q, dim]`` (u, v for Q = 2).

        PSA: one pooled query per view from ``query_masks [B, Q, T]``, shared ``key_mask``;
        codebook: frames outside ``codebook_masks [B, Q, T]`` zeroed.
        """
        parts = []
        if self.psa is not None:
            parts.append(self.psa(x, query_masks, key_mask)[0])
        if self.codebook is not None:
            parts.append(
                self.codebook(x, codebook_masks, detach=self.settings.detach_codebook_views)
            )
        return torch.cat(parts, dim=2)

    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier reads: z ``[B, 3072]`` (Eq. 4) with aggregators, else the frames."""
        return self.aggregate(x) if self.settings.aggregators else x

    def head(self, representation: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` of a ``represent`` output (frame-wise: logits averaged over frames)."""
        if self.settings.aggregators:
            return self.classifier(representation)
        return self.classifier(representation).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frame features ``[B, T, D]`` -> logits ``[B, C]``."""
        return self.head(self.represent(x))
