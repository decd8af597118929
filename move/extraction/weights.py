"""Stage 2, backbone weights by name: where each comes from, the download cache, verification.

``extract.weights.<backbone>`` is a name (the registry's named weights of that backbone:
``imagenet`` for ResNet-50/101: torchvision's ImageNet weights, which the authors' extraction
loaded; ``kinetics`` for TSM-R50 and torchvision's video models; ``timm`` for ``timm:<model>``), a URL, a local checkpoint file, or ``none`` (seeded random init).
Named and URL weights are downloaded once into torch.hub's cache (``$TORCH_HOME/hub/checkpoints``)
and verified: a file name carrying a sha256 prefix (``resnet50-19c8e357.pth``) must match it,
as torch.hub checks; otherwise the sha256 of the first download is recorded beside the file
(``<file>.sha256``) and a later file that differs is refused. ``MOVE_WEIGHTS_URLS`` points names
at other URLs (a mirror, or the tests' local server). No torch import: Snakemake plans with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from move.downloads import download, is_url, read_record, record_path, url_file_name, write_record
from move.errors import MoveError
from move.extraction.backbones import backbone_names, get_backbone
from move.extraction.registry import NamedWeights
from move.files import file_sha256

WEIGHTS_URLS_ENV = "MOVE_WEIGHTS_URLS"
HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's rule: resnet50-19c8e357.pth


@dataclass(frozen=True)
class Weights:
    """Resolved weights: the checkpoint file (None for random init) and its sha256 ("none")."""

    path: Path | None
    sha256: str


def named_weights(backbone: str) -> dict[str, NamedWeights]:
    """The named weights of ``backbone`` in the registry (none for an unknown backbone)."""
    try:
        return dict(get_backbone(backbone).weights)
    except MoveError:
        return {}


def __getattr__(name: str) -> dict[str, dict[str, str]]:
    """``NAMED_WEIGHTS``: named backbone -> weights name -> URL, read from the registry."""
    if name == "NAMED_WEIGHTS":
        return {
            backbone: {weights: named.url for weights, named in named_weights(backbone).items()}
            for backbone in backbone_names()
            if named_weights(backbone)
        }
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_weights(backbone: str) -> str:
    """The named weights a real dataset uses for ``backbone`` (imagenet, kinetics), else none."""
    return next(iter(named_weights(backbone)), "none")


def is_random(weights: str | Path | None) -> bool:
    """True when ``weights`` means a randomly initialised backbone."""
    return weights is None or str(weights).lower() == "none"


def weights_cache_dir() -> Path:
    """torch.hub's checkpoint folder, computed as ``torch.hub.get_dir()`` does (no torch import).

    ``$TORCH_HOME/hub/checkpoints``, else ``$XDG_CACHE_HOME/torch/hub/checkpoints``, else
    ``~/.cache/torch/hub/checkpoints``.
    """
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def url_overrides() -> dict[tuple[str, str], str]:
    """``MOVE_WEIGHTS_URLS``: whitespace-separated ``<backbone>:<name>=<url>`` entries."""
    overrides = {}
    for entry in os.environ.get(WEIGHTS_URLS_ENV, "").split():
        key, sep, url = entry.partition("=")
        backbone, _, name = key.rpartition(":")
        if not sep or not is_url(url) or name not in named_weights(backbone):
            raise MoveError(
                f"environment variable {WEIGHTS_URLS_ENV}: {entry!r} is not "
                "<backbone>:<name>=<url> for a named weight (e.g. "
                "resnet50:imagenet=file:///mirror/resnet50-19c8e357.pth)"
            )
        overrides[(backbone, name)] = url
    return overrides


def weights_url(backbone: str, weights: str) -> str | None:
    """The URL ``weights`` stands for (a name, or a URL itself); None for a path or none."""
    if is_url(weights):
        return weights
    named = named_weights(backbone)
    if weights in named:
        return url_overrides().get((backbone, weights), named[weights].url)
    known = {name for other in backbone_names() for name in named_weights(other)}
    if weights in known:
        choices = ", ".join([*named, "a checkpoint path", "a URL", "none"])
        raise MoveError(f"weights '{weights}' do not exist for {backbone}: use {choices}")
    return None


def weights_file(backbone: str, weights: str | Path) -> Path | None:
    """Where the checkpoint of ``weights`` is or will be downloaded to; None for none.

    Names and URLs map to torch.hub's cache (rule fetch_weights fills it); a local file must
    exist (else one line).
    """
    if is_random(weights):
        return None
    url = weights_url(backbone, str(weights))
    return (
        weights_cache_dir() / cache_name(backbone, str(weights))
        if url
        else local_weights_file(backbone, weights)
    )


def cache_name(backbone: str, weights: str) -> str:
    """The file name named or URL weights are cached as: the URL's, except that a mirror
    (``MOVE_WEIGHTS_URLS``) whose file name carries no sha256 prefix is cached under the
    published name, whose prefix is then checked (a mirror never turns the hash check off)."""
    url = weights_url(backbone, weights)
    named = named_weights(backbone).get(weights)
    if named and named.file_name:
        return named.file_name
    name = url_file_name(url)
    if named and not HASH_IN_NAME.search(name):
        return url_file_name(named.url)
    return name


def _check_hash(digest: str, path: Path, origin: str, cached: bool, published: str = "") -> None:
    """Refuse ``digest`` unless it fits the prefix in ``path``'s name, the registry's published
    sha256 (or prefix) and the recorded sha256."""
    if published and not digest.startswith(published.lower()):
        fix = "delete it to download it again" if cached else f"save the right file as {path}"
        raise MoveError(
            f"{origin}: sha256 {digest[:16]}... is not the published {published[:16]}...: {fix}"
        )
    match = HASH_IN_NAME.search(path.name)
    if match and not digest.startswith(match[1]):
        fix = (
            "delete it to download it again"
            if cached
            else "the download is damaged or not the published file (nothing kept); "
            f"retry, or save the right file as {path}"
        )
        raise MoveError(
            f"{origin}: sha256 {digest[:16]}... does not match the {match[1]}... in the file "
            f"name: {fix}"
        )
    recorded = read_record(path)
    if recorded and digest != recorded:
        record = record_path(path)
        fix = (
            f"delete it to download it again, or delete {record} to accept it"
            if cached
            else f"the published file changed (nothing kept); check it, then delete {record} to accept it"
        )
        raise MoveError(
            f"{origin}: sha256 {digest[:16]}... differs from the {recorded[:16]}... recorded at "
            f"the first download: {fix}"
        )


def fetch_weights(backbone: str, weights: str, check: Callable[[Path], None]) -> Weights:
    """The verified cache file of named or URL weights, downloaded on first use; ``check(path)``
    is the content check (``move.extraction.backbones.checkpoint_check``: loads and fits), run
    on a download before it is kept and on a cached file before it is returned.

    Offline (or any failed download) is one line naming the URL and where to put the file.
    """
    url = weights_url(backbone, weights)
    path = weights_cache_dir() / cache_name(backbone, weights)
    what = f"{backbone} '{weights}' weights" if weights != url else f"{backbone} weights"
    named = named_weights(backbone).get(weights)
    published = named.sha256 if named and url == named.url else ""
    if path.is_file():  # re-verified as a download is: hash, then content
        digest = file_sha256(path)
        _check_hash(digest, path, f"cached {path}", cached=True, published=published)
        try:
            check(path)
        except MoveError as error:
            raise MoveError(f"cached {path} {error}: delete it to download it again") from None
    else:
        fix = f"download it by hand and save it as {path}"
        origin = f"{what} from {url}"
        digest = download(
            url,
            path,
            what,
            fix,
            lambda digest: _check_hash(digest, path, origin, cached=False, published=published),
            check=check,
        )
    if not HASH_IN_NAME.search(path.name) and read_record(path) is None:
        write_record(path, digest)  # only a file that passed every check is recorded
    return Weights(path, digest)


def resolve_weights(
    backbone: str, weights: str | Path | None, check: Callable[[Path], None]
) -> Weights:
    """``none``, a name, a URL or a local file -> the checkpoint file and its sha256 (``check``:
    the content check of a downloaded or cached file, see ``fetch_weights``)."""
    if is_random(weights):
        return Weights(None, "none")
    if weights_url(backbone, str(weights)):
        return fetch_weights(backbone, str(weights), check)
    path = local_weights_file(backbone, weights)
    return Weights(path, file_sha256(path))


def local_weights_file(backbone: str, weights: str | Path) -> Path:
    """``weights`` as a local checkpoint file; a missing one is a one-line error."""
    path = Path(weights)
    if not path.is_file():
        raise MoveError(
            f"weights file {path} not found: set extract.weights to "
            f"{default_weights(backbone)}, a local checkpoint, or 'none'"
        )
    return path
