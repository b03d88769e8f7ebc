"""HMT (Kather et al. 2016 colorectal histology tiles): verified loading, download, and a VGG-style CNN.

Data: 5000 H&E tiles of 150 x 150 px in 8 classes, in the course's layout
``root/HMT_train/<class>/*`` (563 a class) and ``root/HMT_test/<class>/*`` (62 a class).
Cite: J. N. Kather et al., "Multi-class texture analysis in colorectal cancer histology",
Scientific Reports 6:27988 (2016); data CC BY 4.0, Zenodo record 53169.

Every tile's file name names its slide and source image (:func:`tile_groups`): the 5000 tiles come
from 10 slides and 298 source images, and 495 of the 496 HMT_test tiles share a source image with
HMT_train. ``load_hmt(..., groups=True)`` returns them; the training path's validation split
(``TrainConfig.val_split="source_image"``, the default) keeps whole source images on one side, so
the epoch is never chosen on windows of images that training saw; tiles without such names train
with ``val_split="stratified"``.

Axis key: N examples, B batch, H, W image size (150), C channels (3), K classes (8).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

import xai.training.train as tu
from xai.files import atomic_open
from xai.training.augment import COLOUR_AUGMENTS, augment_tiles, colour_augment
from xai.training.saving import load_legacy_model
from xai.training.vgg import build_vgg7

__all__ = [
    "CLASS_FOLDERS",
    "CLASS_NAMES",
    "TILE_SHAPE",
    "ZENODO_URL",
    "ZENODO_MD5",
    "HMTDataError",
    "TILE_NAME_FORMS",
    "TileGroups",
    "tile_groups",
    "default_root",
    "load_hmt",
    "data_fingerprint",
    "download_hmt",
    "VAL_SPLITS",
    "TrainConfig",
    "build_model",
    "train",
    "save_model",
    "load_course_model",
    "course_model_inputs",
    "course_accuracy",
    "two_accuracies",
]

CLASS_FOLDERS = ["01_TUMOR", "02_STROMA", "03_COMPLEX", "04_LYMPHO",
                 "05_DEBRIS", "06_MUCOSA", "07_ADIPOSE", "08_EMPTY"]
CLASS_NAMES = ["tumour", "stroma", "complex", "lympho", "debris", "mucosa", "adipose", "empty"]
TILE_SHAPE = (150, 150, 3)
SPLITS = ("HMT_train", "HMT_test")
ZENODO_URL = "https://zenodo.org/records/53169/files/Kather_texture_2016_image_tiles_5000.zip?download=1"
ZENODO_MD5 = "0ddbebfc56344752028fda72602aaade"
ZIP_FOLDER = "Kather_texture_2016_image_tiles_5000"
TEST_PER_CLASS = 62
HERE = os.path.dirname(os.path.abspath(__file__))


class HMTDataError(RuntimeError):
    """The HMT data are missing, incomplete or corrupt; the message says which file and what to do."""


# --- where each tile comes from: its slide and source image, from its file name ---

# <hex id>_<source image>.tif_Row_<row>_Col_<col>.<ext>, the window at (row, col) of a source image of
# a slide. Nine forms of the source image occur in the 5000 tiles (counts in the docstring below).
TILE_NAME_FORMS = ("CRC-Prim-HE-NN_NNN", "CRC-Prim-HE-NN", "CRC-Prim-HE-NN_NNNa", "CRC-Prim-HE-NN_NNNb",
                   "CRC-Prim-HE-NN_NNNc", "CRC-Prim-HE-NN_NNN_copy", "CRC-Prim-HE-NNb", "CRC-Prim-HE-NNc",
                   "CRC-Prim-HE-NN_copy")
_TILE_NAME = re.compile(r"[0-9A-F]+_(?P<slide>CRC-Prim-HE-\d{2})(?:(?P<image>_\d{3})(?:[abc]|_copy)?|b|c|_copy)?"
                        r"\.tif_Row_\d+_Col_\d+\.[A-Za-z0-9]+")


class TileGroups(NamedTuple):
    """Where each tile comes from, aligned with the tiles: str arrays (N,)."""
    slide: np.ndarray           # (N,) str, e.g. "CRC-Prim-HE-03"
    source_image: np.ndarray    # (N,) str, e.g. "CRC-Prim-HE-03_009"

    def take(self, index) -> TileGroups:
        """The groups of a subset of the tiles (an index or boolean mask, as for the tiles)."""
        return TileGroups(self.slide[index], self.source_image[index])


def tile_groups(name: str) -> tuple[str, str]:
    """``(slide, source_image)`` of an HMT tile, from its file name (a path is fine).

    ``10009_CRC-Prim-HE-03_009.tif_Row_301_Col_151.webp`` is the window at row 301, column 151 of
    source image ``CRC-Prim-HE-03_009`` of slide ``CRC-Prim-HE-03``. The forms, with their counts in
    the 5000 tiles: ``CRC-Prim-HE-NN_NNN`` 4332, ``CRC-Prim-HE-NN`` 431 (the slide's unnumbered
    image), ``_NNNb`` 100, ``_NNNa`` 71, ``_NNN_copy`` 25, ``NNb`` 15, ``NN_copy`` 14, ``NNc`` 10,
    ``_NNNc`` 2. A suffix (a, b, c, _copy) marks another crop or a copy of the same image: its windows
    restart at row 1, col 1 and hold other tissue, but may lie next to the unsuffixed crop's in the
    image, so it is counted as the same source image (the cautious choice: merging never leaks).
    That gives 298 source images (313 with the suffixes kept apart) on 10 slides.

    Raises:
        HMTDataError: a name of none of the forms (:data:`TILE_NAME_FORMS`).
    """
    base = os.path.basename(str(name))
    match = _TILE_NAME.fullmatch(base)
    if match is None:
        raise HMTDataError(f"cannot tell the slide and source image of {base!r}: expected "
                           "<hex id>_<source image>.tif_Row_<row>_Col_<col>.<ext> with the source image in one of the "
                           f"forms {', '.join(TILE_NAME_FORMS)} (N a digit), as Kather et al.'s tiles are named. "
                           "Tiles named otherwise load without groups: load_hmt(..., groups=False).")
    return match["slide"], match["slide"] + (match["image"] or "")


def _groups_of(files: list[str]) -> TileGroups | None:
    """The groups of these files, or None if any name is not of a known form."""
    try:
        pairs = [tile_groups(path) for path in files]
    except HMTDataError:
        return None
    slide, image = zip(*pairs) if pairs else ((), ())
    return TileGroups(np.asarray(slide, dtype=str), np.asarray(image, dtype=str))


def default_root() -> str:
    """``$HMT_DIR`` if set, else ``data/hmt`` in the repository (``make data`` puts it there)."""
    return os.environ.get("HMT_DIR") or os.path.join(HERE, "data", "hmt")


# --- loading, with a decoded cache ---

def _list_split(root: str, split: str) -> list[list[str]]:
    """File paths of one split, one sorted list a class; checks the folders on the way."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise HMTDataError(f"no folder {folder!r}: expected {root!r} to hold {' and '.join(SPLITS)} "
                           "with one folder a class. Run `make data`, or set HMT_DIR to the folder "
                           "that holds HMT_train and HMT_test.")
    found = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    missing = [c for c in CLASS_FOLDERS if c not in found]
    unexpected = [c for c in found if c not in CLASS_FOLDERS]
    if missing or unexpected:
        raise HMTDataError(f"class folders of {folder!r} do not match: missing {missing}, unexpected "
                           f"{unexpected}; expected exactly {CLASS_FOLDERS}")
    files = []
    for c in CLASS_FOLDERS:
        names = sorted(n for n in os.listdir(os.path.join(folder, c)) if not n.startswith("."))
        if not names:
            raise HMTDataError(f"class folder {os.path.join(folder, c)!r} is empty; re-run `make data`")
        files.append([os.path.join(folder, c, n) for n in names])
    return files


def _fingerprint(files: list[str], root: str) -> str:
    """Hash of the files' relative names and contents: any change to a file's bytes changes it,
    even one that keeps the size and the modification time."""
    h = hashlib.sha1()
    for path in files:
        h.update(f"{os.path.relpath(path, root)}\n".encode())
        with open(path, "rb") as f:
            h.update(hashlib.sha1(f.read()).digest())
    return h.hexdigest()[:20]


def _decode(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise HMTDataError(f"cannot decode {path!r} ({err}); the file is corrupt: delete it and "
                           "re-run `make data`") from err
    if arr.shape != TILE_SHAPE or arr.dtype != np.uint8:
        raise HMTDataError(f"{path!r} is {arr.shape} {arr.dtype}, expected a {TILE_SHAPE} uint8 RGB "
                           "tile; the data are not the HMT tiles: re-run `make data`")
    return arr


def load_hmt(root: str | None = None, *, cache_dir: str | None = None, progress: bool = True,
             groups: bool = False):
    """Load the HMT tiles in the course's train/test layout.

    Decoded arrays are cached as a compressed ``.npz`` in ``cache_dir`` (default ``data/cache``),
    keyed by a fingerprint of the files' names and contents; a change to any file's bytes rebuilds
    the cache, and so does a truncated or corrupt cache. A folder that cannot be written loads
    without caching (with a warning). The cache also holds the tiles' groups (slide, source image)
    when every name has a known form; a cache written before it did is rebuilt once.

    Args:
        root: folder holding ``HMT_train`` and ``HMT_test``; ``None`` means :func:`default_root`.
        cache_dir: where the decoded cache lives; ``None`` means ``data/cache`` in the repository.
        progress: show a progress bar while decoding.
        groups: also return each tile's slide and source image (:func:`tile_groups`). Tiles named
            otherwise (a folder of one's own) load as usual without it; asked for, such a name is an error.

    Returns:
        ``(x_train, y_train), (x_test, y_test), class_names`` with x uint8 (N, 150, 150, 3),
        y int64 (N,) in folder order, and the 8 readable class names; with ``groups=True`` a fourth
        item ``(groups_train, groups_test)``, two :class:`TileGroups` aligned with the tiles.

    Raises:
        HMTDataError: missing root or class folders, an empty class, a file that does not decode
            or is not a 150 x 150 RGB tile; with ``groups=True``, a name of no known form.
    """
    if not isinstance(groups, bool):
        raise TypeError(f"groups must be True or False, got {groups!r}")
    root = default_root() if root is None else str(root)
    if not os.path.isdir(root):
        raise HMTDataError(f"HMT data folder {root!r} does not exist. Run `make data` (it links the "
                           "shared copy or downloads Zenodo record 53169), or set HMT_DIR to the "
                           "folder that holds HMT_train and HMT_test.")
    per_split = {s: _list_split(root, s) for s in SPLITS}
    all_files = [p for s in SPLITS for cls in per_split[s] for p in cls]
    named = {s: _groups_of([p for cls in per_split[s] for p in cls]) for s in SPLITS}   # None: names of no known form
    if groups and any(g is None for g in named.values()):
        for path in all_files:
            tile_groups(path)                                 # raises, naming the first such file
    cache_dir = os.path.join(HERE, "data", "cache") if cache_dir is None else cache_dir
    cache = os.path.join(cache_dir, f"hmt_{_fingerprint(all_files, root)}.npz")
    arrays = _read_cache(cache, per_split, named) if os.path.isfile(cache) else None
    if arrays is None:
        arrays = _decode_splits(per_split, progress)
        for split, key in zip(SPLITS, ("train", "test")):
            if named[split] is not None:
                arrays[f"slide_{key}"], arrays[f"source_image_{key}"] = named[split]
        try:
            _save_npz_atomic(cache, arrays)
        except OSError as err:                                # a read-only folder: load without caching
            import warnings
            warnings.warn(f"could not write the HMT cache {cache!r} ({err}); loading without a cache",
                          stacklevel=2)
    data = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"]), list(CLASS_NAMES)
    if not groups:
        return data
    return data + (tuple(TileGroups(arrays[f"slide_{k}"], arrays[f"source_image_{k}"]) for k in ("train", "test")),)


def data_fingerprint(x: np.ndarray, y: np.ndarray, groups: TileGroups | np.ndarray | None = None) -> str:
    """A content hash of tiles and labels (sha1 of the bytes, shapes and dtypes; 20 hex digits), so
    a saved model names exactly the data it was trained or tested on, wherever they were stored.

    ``groups``: None (the hash of x and y alone, as models/HMT.json records it), a :class:`TileGroups`
    or str/int (N,) group ids, hashed too (as text, so the dtype's string width does not matter)."""
    h = hashlib.sha1()
    for a in (np.ascontiguousarray(x), np.ascontiguousarray(y)):
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(memoryview(a).cast("B"))
    if groups is not None:
        columns = list(groups) if isinstance(groups, TileGroups) else [groups]
        for column in map(np.asarray, columns):
            if column.shape != (len(y),):
                raise ValueError(f"groups must hold one id per tile: expected shape ({len(y)},), got {column.shape}")
            h.update(b"groups|" + "\n".join(map(str, column.tolist())).encode())
    return h.hexdigest()[:20]


def _read_cache(path: str, per_split: dict, named: dict) -> dict | None:
    """The cached arrays, or None (rebuild) when the file is truncated, corrupt or incomplete, or its
    groups are missing or differ from those the file names give."""
    import zipfile
    want = {f"{x}_{k}": sum(len(c) for c in per_split[s]) for s, k in zip(SPLITS, ("train", "test")) for x in "xy"}
    want.update({f"{g}_{k}": n for s, k in zip(SPLITS, ("train", "test")) if named[s] is not None
                 for g, n in (("slide", len(named[s].slide)), ("source_image", len(named[s].slide)))})
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    if set(arrays) != set(want) or any(len(arrays[k]) != n for k, n in want.items()) or \
            arrays["x_train"].shape[1:] != TILE_SHAPE or arrays["x_train"].dtype != np.uint8:
        return None
    for s, k in zip(SPLITS, ("train", "test")):
        if named[s] is not None and not (np.array_equal(arrays[f"slide_{k}"], named[s].slide)
                                         and np.array_equal(arrays[f"source_image_{k}"], named[s].source_image)):
            return None
    return arrays


def _decode_splits(per_split: dict, progress: bool) -> dict:
    from tqdm.auto import tqdm
    total = sum(len(cls) for s in SPLITS for cls in per_split[s])
    arrays = {}
    with tqdm(total=total, desc="decoding HMT tiles", disable=not progress) as bar:
        for split, key in zip(SPLITS, ("train", "test")):
            xs, ys = [], []
            for label, files in enumerate(per_split[split]):
                for path in files:
                    xs.append(_decode(path))
                    ys.append(label)
                    bar.update()
            arrays[f"x_{key}"] = np.stack(xs)                   # (N, 150, 150, 3) uint8
            arrays[f"y_{key}"] = np.asarray(ys, np.int64)       # (N,)
    return arrays


def _save_npz_atomic(path: str, arrays: dict) -> None:
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


# --- download for users without the shared copy ---

def download_hmt(dest: str | None = None, *, url: str = ZENODO_URL, md5: str = ZENODO_MD5,
                 seed: int = 0, test_per_class: int = TEST_PER_CLASS, progress: bool = True,
                 timeout: float = 60.0) -> str:
    """Download Kather et al.'s 5000 tiles from Zenodo, verify them and split them as the course did.

    Streams the zip with a progress bar, checks its md5, extracts it into a temporary folder beside
    ``dest``, splits every class into ``HMT_train`` / ``HMT_test`` with ``test_per_class`` test tiles
    chosen by ``seed`` (62 gives the course's 563 / 62 sizes), and renames the result into place.
    On any failure nothing partial is left at ``dest``.

    Returns:
        ``dest``.
    Raises:
        HMTDataError: ``dest`` already holds data, the transfer broke off, the checksum does not
            match, or the zip is not the HMT archive.
    """
    dest = os.path.abspath(default_root() if dest is None else dest)
    if os.path.exists(dest):
        raise HMTDataError(f"{dest!r} already exists; remove it first to download afresh")
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".hmt-download-", dir=parent)
    try:
        archive = os.path.join(work, "hmt.zip")
        digest = _stream(url, archive, progress, timeout)
        if digest != md5:
            raise HMTDataError(f"checksum mismatch for {url}: md5 {digest}, expected {md5}; the "
                               "download is corrupt or not the HMT archive. Try again later.")
        staged = os.path.join(work, "hmt")
        _extract_and_split(archive, staged, seed, test_per_class)
        os.replace(staged, dest)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile) as err:
        raise HMTDataError(f"downloading HMT from {url} failed: {err}. Nothing was written to "
                           f"{dest!r}; check the connection and try again.") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _stream(url: str, path: str, progress: bool, timeout: float) -> str:
    """Stream ``url`` into ``path``; returns the md5; raises if fewer bytes came than announced."""
    from tqdm.auto import tqdm
    md5 = hashlib.md5()
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc="HMT zip", disable=not progress) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise HMTDataError(f"transfer cut short: {received} of {total} bytes from {url}; try again")
    return md5.hexdigest()


def _extract_and_split(archive: str, out: str, seed: int, test_per_class: int) -> None:
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(archive) as z:
        members = [m for m in z.namelist() if not m.endswith("/")]
        for c in CLASS_FOLDERS:
            prefix = f"{ZIP_FOLDER}/{c}/"
            names = sorted(m for m in members if m.startswith(prefix))
            if len(names) <= test_per_class:
                raise HMTDataError(f"the archive holds {len(names)} tiles under {prefix!r}, expected "
                                   f"more than {test_per_class}; it is not the HMT archive")
            test = set(rng.choice(len(names), test_per_class, replace=False).tolist())
            for i, member in enumerate(names):
                split = SPLITS[1] if i in test else SPLITS[0]
                target = os.path.join(out, split, c, os.path.basename(member))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with z.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)


# --- the VGG-style CNN ---

VAL_SPLITS = ("stratified", "source_image")


@dataclass(frozen=True)
class TrainConfig(tu.TrainConfig):
    """Training recipe of the HMT CNN, chosen on a stratified validation split of HMT_train."""
    epochs: int = 64               # passes over the training split (fits 45 min on a 2-core CPU)
    batch_size: int = 32
    learning_rate: float = 2e-3    # peak of the warm-up + cosine schedule
    weight_decay: float = 5e-4     # AdamW's decoupled weight decay
    colour_augment: str = "rgb"    # "none", "rgb" (gain/offset), "hed" (stain jitter), "lab" (RandStainNA-style)
    colour_jitter: float = 0.08    # "rgb": per-channel gain and offset jitter (stain variation)
    hed_strength: float = 0.05     # "hed": each stain scaled by 1 +- s and shifted by +- s (Tellez's HED-light)
    width: int = 32                # channels of the first block; the second has 2w
    activation: str = "gelu"       # smooth, so IG's path integrand is smooth (see build_model)
    dropout: float = 0.2           # before the linear classifier
    padding: str = "valid"         # "valid": no zero frame for the model to find; "reflect": nor a centre pile (build_model)
    stem_kernel: int = 3           # the first, stride-2 convolution's kernel: 4 overlaps evenly (no checkerboard)
    block3_width: int = 192        # channels of the third block (cheap at 14 x 14); 0 means 4 * width
    train_crop: int = 112          # > 0: train on random crops of this size (see train); 0: whole tiles
    stem_width: int = 0            # > 0: a full-resolution first conv of this many channels + 2x2 pooling
    val_split: str = "source_image"  # whole source images a side (needs groups; the committed model's) or "stratified"
    # ema_decay (from the base, 0: off): 0.998 was tried and tied on validation (see HMT.ipynb, models/trials/)

    def __post_init__(self):
        super().__post_init__()
        crop_ok = self.train_crop == 0 or 32 <= self.train_crop <= TILE_SHAPE[0]
        if self.width < 1 or self.block3_width < 0 or self.stem_width < 0 or not crop_ok or self.stem_kernel not in (3, 4):
            raise ValueError(f"invalid HMT config: width >= 1, block3_width >= 0, stem_width >= 0, stem_kernel 3 or 4 and "
                             f"train_crop 0 or in "
                             f"[32, {TILE_SHAPE[0]}] expected, got {self}")
        if self.stem_width and self.stem_kernel != 3:
            raise ValueError(f"invalid HMT config: a full-resolution stem (stem_width > 0) has a 3 x 3 kernel; "
                             f"stem_kernel={self.stem_kernel} applies to the stride-2 stem (stem_width=0), got {self}")
        if self.colour_augment not in COLOUR_AUGMENTS or not 0 <= self.colour_jitter < 1 or not 0 <= self.hed_strength < 1:
            raise ValueError(f"invalid HMT config: colour_augment one of {COLOUR_AUGMENTS}, colour_jitter and "
                             f"hed_strength in [0, 1) expected, got {self}")
        if self.val_split not in VAL_SPLITS:
            raise ValueError(f"invalid HMT config: val_split must be one of {VAL_SPLITS}, got {self.val_split!r}")


# Fields added after models were trained and keyed, at the value that means the recipe as it was.
_LATER_FIELDS = {"colour_augment": "rgb", "stem_kernel": 3}


def recipe_key(config: TrainConfig) -> dict:
    """The config as a resume key: its fields, less those that do not change what is trained (a
    colour strength the chosen augmentation does not use) and those added later while at the value
    that reproduces the earlier recipe, so that records keyed before a field existed keep matching."""
    key = asdict(config)
    for name, old in _LATER_FIELDS.items():
        if key[name] == old:
            del key[name]
    if config.colour_augment != "hed":
        del key["hed_strength"]
    if config.colour_augment != "rgb":
        del key["colour_jitter"]
    return key


def build_model(width: int = 32, seed: int = 0, activation: str = "gelu", dropout: float = 0.2,
                padding: str = "valid", block3_width: int = 192, input_shape: tuple = TILE_SHAPE,
                stem_width: int = 0, stem_kernel: int = 3):
    """HMT's CNN: ``xai.training.vgg.build_vgg7`` for the 8 classes and (150, 150, 3) tiles (0-255; the
    model scales its own input), named "hmt_vgg7". Valid convolutions (the committed model's): no
    zero frame to learn, but |IG| piles up 3.9 times in the centre; ``padding="reflect"`` with
    ``stem_kernel=4`` removes the pile and the checkerboard (see build_vgg7). ``input_shape=(None,
    None, 3)`` builds the same network for any tile size (training on crops). Output: probabilities
    (None, 8), after a separate softmax layer (the logits are one layer away)."""
    return build_vgg7(len(CLASS_NAMES), input_shape, width=width, seed=seed, activation=activation, dropout=dropout,
                      padding=padding, block3_width=block3_width, stem_width=stem_width, stem_kernel=stem_kernel,
                      name="hmt_vgg7")


def train(x_train, y_train, config: TrainConfig = TrainConfig(), *, groups: TileGroups | np.ndarray | None = None,
          one_group_classes: str = "raise", callbacks=(), verbose: int = 0):
    """Train on HMT_train (uint8 or float tiles, 0-255); a validation split of it chooses the epoch:
    stratified (``config.val_split="stratified"``), or whole source images on one side
    (``"source_image"``, :func:`xai.training.splits.grouped_split`), which needs ``groups``: the
    :class:`TileGroups` of the tiles or str (N,) source images. ``one_group_classes="train"`` keeps a
    class from a single source image in training only (see grouped_split). HMT_test is not touched.
    Returns ``(model, info)`` (see :func:`xai.training.train.train_model`, which also takes the extra
    Keras ``callbacks``); info also holds the data fingerprint of the training tiles (and, with
    groups, ``train_groups_fingerprint``: of tiles, labels and groups) and ``one_group_classes``
    (None without groups).

    The colour augmentation is ``config.colour_augment`` (``xai.training.augment.colour_augment``); "lab"
    draws from the LAB statistics of the tiles fitted (the validation tiles left out).
    With ``config.train_crop`` > 0 the network is trained on random crops (a cheaper step and a
    translation augmentation); being fully convolutional up to its global average pooling, it is
    built for any tile size during training, validated on whole tiles, and returned rebuilt for
    (150, 150, 3) tiles with the same weights.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be hmt_utils.TrainConfig, got {type(config).__name__}")
    if (groups is None) != (config.val_split == "stratified"):
        raise ValueError(f"config.val_split={config.val_split!r} with groups={'None' if groups is None else 'given'}: "
                         "'source_image' (the default) needs the tiles' groups (load_hmt(..., groups=True)), "
                         "'stratified' uses none; pass groups with val_split='source_image' only, or "
                         "TrainConfig(val_split='stratified') for tiles without slide and source-image names")
    from xai.training.stain import lab_statistics
    images = groups.source_image if isinstance(groups, TileGroups) else groups
    statistics = None
    if config.colour_augment == "lab":                  # the fitted side of the split only, as train_model makes it
        statistics = lab_statistics(x_train[tu.validation_split(y_train, config, images, one_group_classes)[0]])
    colour = colour_augment(config.colour_augment, rgb_strength=config.colour_jitter, hed_strength=config.hed_strength,
                            statistics=statistics)
    build = lambda shape: build_model(config.width, config.seed, config.activation, config.dropout,  # noqa: E731
                                      config.padding, config.block3_width, shape, config.stem_width, config.stem_kernel)
    model, info = tu.train_model(
        lambda: build((None, None, 3) if config.train_crop else TILE_SHAPE), x_train, y_train, config,
        augment=lambda xb, rng: augment_tiles(xb, rng, crop=config.train_crop, colour=colour),
        callbacks=callbacks, verbose=verbose, groups=images, one_group_classes=one_group_classes,
        jit_compile=True if config.padding == "reflect" else "auto")       # reflect's pad layers fused: 1.8x faster on CPU
    if config.train_crop:
        final = build(TILE_SHAPE)
        final.set_weights(model.get_weights())
        model = final
    info["train_fingerprint"] = data_fingerprint(x_train, y_train)
    info["one_group_classes"] = None if groups is None else one_group_classes   # how a one-image class was split
    if groups is not None:
        info["train_groups_fingerprint"] = data_fingerprint(x_train, y_train, groups)
    return model, info


# --- the course's model, for comparison ---

def load_course_model(path: str):
    """The course's legacy ``HMT.h5`` (Keras 2 HDF5), loaded by Keras 3 without compiling
    (:func:`xai.training.saving.load_legacy_model`)."""
    return load_legacy_model(path)


def course_model_inputs(x: np.ndarray, batch_size: int = 128):
    """Tiles as the course model wants them: float32 (N, 224, 224, 3) in [0, 1], resized bilinearly
    from 150 x 150. Yields batches, so the 224 x 224 copy never has to fit in memory whole."""
    import tensorflow as tf
    for i in range(0, len(x), batch_size):
        xb = tf.image.resize(tf.cast(x[i:i + batch_size], tf.float32) / 255.0, (224, 224),
                             method="bilinear")
        yield xb.numpy()


def save_model(model, info: dict, test_accuracy: float, per_class_accuracy, tta_accuracy: float | None = None,
               path: str = "models/HMT.keras", *, test_fingerprint: str | None = None) -> None:
    """Save the model portably and, beside it, a JSON with its provenance: seed, recipe, the
    validation split (its kind, seed and, if grouped, groups a side and ``one_group_classes``), the data
    fingerprints, validation, test and per-class accuracy, training time and library versions. Atomic
    (temp file + rename)."""
    tu.save_trained_model(
        model, info, path, test_accuracy,
        per_class_accuracy=dict(zip(CLASS_NAMES, map(float, per_class_accuracy))),
        test_accuracy_tta=None if tta_accuracy is None else float(tta_accuracy),
        data={"name": "HMT (Kather et al. 2016), the course's HMT_train / HMT_test split",
              "val_split": info["config"].get("val_split", "stratified"), "val_groups": info.get("val_groups"),
              "one_group_classes": info.get("one_group_classes"),
              "val_split_seed": info["config"]["seed"], "val_fraction": info["config"]["val_fraction"],
              "train_groups_fingerprint": info.get("train_groups_fingerprint"),
              "train_fingerprint": info.get("train_fingerprint"), "test_fingerprint": test_fingerprint,
              "n_train": info.get("n_train"), "n_val": info.get("n_val")})


# --- what HMT.ipynb reports beside the test accuracy ---

def course_accuracy(path: str, x_test, y_test) -> float | None:
    """The course's ``HMT.h5`` on these tiles (224 x 224, [0, 1], as it was trained), or None when
    the file is not there."""
    if not os.path.isfile(path):
        return None
    course = load_course_model(path)
    prob = np.concatenate([course.predict(xb, verbose=0) for xb in course_model_inputs(np.asarray(x_test))])
    return float(np.mean(prob.argmax(-1) == np.asarray(y_test)))


def two_accuracies(model_json: str, cv_json: str) -> str:
    """Markdown: the committed model's accuracy on the course's HMT_test beside the accuracy with
    whole slides held out (``tools/hmt_slide_cv.py``'s record), and what each measures. A record
    that is missing or not complete is said so, never filled in."""
    with open(model_json) as f:
        model = json.load(f)
    n = len(CLASS_NAMES) * TEST_PER_CLASS
    lines = ["| split | tiles tested | accuracy | 95 % interval | what it measures |", "|---|---|---|---|---|",
             f"| the course's HMT_test | {n} | {model['test_accuracy']:.3f} | — | tiles of source images that training "
             "also saw (495 of 496 share one) |"]
    if not os.path.isfile(cv_json):
        lines.append(f"| slides held out | — | not run | — | `python tools/hmt_slide_cv.py` writes {cv_json} |")
        return "\n".join(lines)
    with open(cv_json) as f:
        cv = json.load(f)
    summary = cv.get("summary")
    if summary is None or cv.get("quick"):
        lines.append(f"| slides held out | — | {'a QUICK record' if cv.get('quick') else 'incomplete'} | — | "
                     f"{len(cv.get('folds', []))} folds so far: run `python tools/hmt_slide_cv.py` to finish |")
        return "\n".join(lines)
    pooled = summary["pooled"]
    lo, hi = pooled["slide_bootstrap95"]
    lines.append(f"| slides held out ({len(cv['folds'])} folds, {cv['config']['epochs']} epochs) | {pooled['n']} | "
                 f"{pooled['accuracy']:.3f} | {lo:.3f}–{hi:.3f} (slides resampled) | tissue of slides, so patients, "
                 "that training never saw |")
    return "\n".join(lines)
