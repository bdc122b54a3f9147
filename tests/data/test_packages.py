"""Tests for the versioned data packages (unigen_sb3.data)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from skimage.transform import resize

from unigen_sb3.data import packages
from unigen_sb3.data.packages import (
    MANIFEST_NAME,
    PACKAGES_ROOT,
    DataPackageError,
    build_manifest,
    file_sha256,
    list_packages,
    load_manifest,
    package_dir,
    read_package_file,
    verify_package,
)
from unigen_sb3.data.photos import load_photo_patches, load_photos_spec
from unigen_sb3.data.prompts import (
    CENTRES,
    GENERATION_BACKGROUNDS,
    HALF_EXTENTS,
    HELDOUT_PAIRS,
    build_prompt_records,
    load_prompts,
    prompts_jsonl,
)
from unigen_sb3.data.shapes import edit_scene, generate_scene, load_palette, load_shapes_spec

SHIPPED = ("photos", "prompts", "shapes")


@pytest.fixture
def root_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped packages that a test may damage."""
    dst = tmp_path / "packages"
    shutil.copytree(PACKAGES_ROOT, dst)
    return dst


def _rebuild_manifest(root: Path, name: str) -> None:
    old = json.loads((root / name / "manifest.json").read_text())
    new = build_manifest(
        root / name,
        version=old["version"],
        source=old["source"],
        licence=old["licence"],
        description=old["description"],
    )
    (root / name / "manifest.json").write_text(json.dumps(new, indent=2) + "\n")


# ----------------------------------------------------------------------------- manifests


def test_shipped_packages_verify_and_are_small() -> None:
    assert set(SHIPPED) <= set(list_packages())
    total = 0
    for name in SHIPPED:
        m = verify_package(name)
        assert m.name == name and m.version and m.source and m.licence and m.description
        listed = {f.path for f in m.files}
        on_disk = {
            p.relative_to(package_dir(name)).as_posix()
            for p in package_dir(name).rglob("*")
            if p.is_file() and p.name != "manifest.json"
        }
        assert listed == on_disk, f"{name}: files not matching the manifest"
        for f in m.files:
            assert (package_dir(name) / f.path).stat().st_size == f.bytes
            total += f.bytes
    assert total < 2_000_000


def test_build_manifest_reproduces_shipped_manifests() -> None:
    for name in SHIPPED:
        shipped = json.loads((PACKAGES_ROOT / name / "manifest.json").read_text())
        m = load_manifest(name)
        rebuilt = build_manifest(
            PACKAGES_ROOT / name,
            version=m.version,
            source=m.source,
            licence=m.licence,
            description=m.description,
        )
        assert rebuilt == shipped


def test_corrupt_file_names_file_and_checksums(root_copy: Path) -> None:
    spec = root_copy / "shapes" / "shapes_spec.json"
    expected = load_manifest("shapes", root_copy).file("shapes_spec.json").sha256
    spec.write_text(spec.read_text().replace("0.85, 0.15, 0.15", "0.85, 0.15, 0.16"))
    actual = hashlib.sha256(spec.read_bytes()).hexdigest()
    assert actual != expected
    with pytest.raises(DataPackageError) as info:
        verify_package("shapes", root=root_copy)
    msg = str(info.value)
    assert "shapes_spec.json" in msg and expected in msg and actual in msg
    assert isinstance(info.value, ValueError)
    # Loaders go through the same check.
    with pytest.raises(DataPackageError, match=r"shapes_spec\.json"):
        generate_scene(0, root=root_copy)
    with pytest.raises(DataPackageError, match=r"shapes_spec\.json"):
        load_prompts(root=root_copy)  # the prompts check themselves against the palette


def test_manifest_size_is_checked(root_copy: Path) -> None:
    # The manifest's byte count used to be read but never compared.
    manifest_path = root_copy / "shapes" / MANIFEST_NAME
    raw = json.loads(manifest_path.read_text())
    entry = next(f for f in raw["files"] if f["path"] == "shapes_spec.json")
    real = entry["bytes"]
    entry["bytes"] = 999999
    manifest_path.write_text(json.dumps(raw))
    message = f"'shapes_spec.json' has {real} bytes, its manifest says 999999"
    with pytest.raises(DataPackageError, match=message):
        verify_package("shapes", root=root_copy)
    with pytest.raises(DataPackageError, match=message):
        read_package_file("shapes", "shapes_spec.json", root=root_copy)


def test_corrupt_file_found_through_monkeypatched_root(
    root_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root_copy / "prompts" / "prompts.jsonl").write_text("{}\n")
    monkeypatch.setattr(packages, "PACKAGES_ROOT", root_copy)
    with pytest.raises(DataPackageError, match=r"prompts\.jsonl.*expected sha256"):
        verify_package("prompts")
    verify_package("shapes")  # the undamaged packages of the same root still verify


def test_missing_file(root_copy: Path) -> None:
    (root_copy / "photos" / "photos_spec.json").unlink()
    with pytest.raises(DataPackageError, match=r"photos_spec\.json.*missing"):
        verify_package("photos", root=root_copy)
    with pytest.raises(DataPackageError, match="missing"):
        load_photo_patches(16, root=root_copy)


def test_missing_package_and_malformed_manifests(root_copy: Path) -> None:
    with pytest.raises(DataPackageError, match="available"):
        package_dir("nope", root_copy)
    with pytest.raises(DataPackageError, match="plain folder name"):
        package_dir("../shapes", root_copy)
    manifest = root_copy / "shapes" / "manifest.json"
    good = json.loads(manifest.read_text())
    bad_cases = [
        ({**good, "files": [{**good["files"][0], "path": "../x"}]}, "relative POSIX path"),
        ({**good, "files": [{**good["files"][0], "sha256": "abc"}]}, "64 lowercase hex"),
        ({**good, "name": "other"}, "names package 'other'"),
        ({k: v for k, v in good.items() if k != "licence"}, "must be an object with keys"),
    ]
    for content, message in bad_cases:
        manifest.write_text(json.dumps(content))
        with pytest.raises(DataPackageError, match=message):
            load_manifest("shapes", root_copy)
    manifest.write_text("{not json")
    with pytest.raises(DataPackageError, match="cannot read manifest"):
        load_manifest("shapes", root_copy)


def test_read_package_file_rejects_unlisted_paths() -> None:
    with pytest.raises(DataPackageError, match="does not list"):
        read_package_file("shapes", "manifest.json")
    data = read_package_file("shapes", "shapes_spec.json")
    assert hashlib.sha256(data).hexdigest() == file_sha256(
        package_dir("shapes") / "shapes_spec.json"
    )


# ----------------------------------------------------------------------------- shapes


def test_shapes_generation_is_deterministic_and_seed_dependent() -> None:
    a, b = generate_scene(3), generate_scene(3)
    assert torch.equal(a.image, b.image) and torch.equal(a.masks, b.masks)
    assert a.objects == b.objects and a.background == b.background
    images = [generate_scene(s, size=32).image for s in range(10)]
    distinct = {hashlib.sha256(im.numpy().tobytes()).hexdigest() for im in images}
    assert len(distinct) == 10


def test_shapes_scene_content_matches_its_description() -> None:
    palette = load_palette()
    spec = load_shapes_spec()
    for seed in range(20):
        scene = generate_scene(seed, size=48)
        n = len(scene.objects)
        assert spec["min_objects"] <= n <= spec["max_objects"]
        assert scene.image.shape == (3, 48, 48) and scene.image.dtype == torch.float32
        assert scene.masks.shape == (n, 1, 48, 48)
        assert float(scene.masks.sum(0).max()) <= 1.0  # disjoint
        assert len({o.colour for o in scene.objects}) == n
        background = ~scene.masks.sum(0)[0].bool()
        bg = torch.tensor(scene.background_rgb).view(3, 1)
        assert torch.equal(scene.image[:, background], bg.expand(3, int(background.sum())))
        for obj, mask, labels in zip(scene.objects, scene.masks, scene.labels, strict=True):
            assert obj.rgb == palette[obj.colour]
            assert obj.shape in ("circle", "square", "triangle")
            m = mask[0].bool()
            assert int(m.sum()) > 0
            expected = torch.tensor(obj.rgb).view(3, 1).expand(3, int(m.sum()))
            assert torch.equal(scene.image[:, m], expected)
            _, xs = torch.nonzero(m, as_tuple=True)
            assert abs(float(xs.float().mean()) - obj.centre[0]) < obj.half_extent
            assert labels == obj.attributes and labels["size"] in ("small", "large")


def test_shape_masks_have_the_right_form() -> None:
    # Fill ratio of the bounding box tells the shapes apart: circle ~pi/4, square 1, triangle 1/2.
    ratios: dict[str, list[float]] = {"circle": [], "square": [], "triangle": []}
    for seed in range(30):
        scene = generate_scene(seed, size=64)
        for obj, mask in zip(scene.objects, scene.masks, strict=True):
            box = (2 * obj.half_extent) ** 2
            ratios[obj.shape].append(float(mask.sum()) / box)
    expected = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}
    for shape, values in ratios.items():
        assert values, shape
        assert abs(np.mean(values) - expected[shape]) < 0.12, (shape, np.mean(values))


def test_edit_ground_truth_differs_only_inside_mask() -> None:
    scene = generate_scene(11)
    for i, obj in enumerate(scene.objects):
        new = "blue" if obj.colour != "blue" else "red"
        edited, mask = edit_scene(scene, i, new)
        assert torch.equal(mask, scene.masks[i])
        changed = (edited != scene.image).any(0)
        m = mask[0].bool()
        assert torch.equal(changed, m)  # every object pixel changes, nothing else does
        colour = torch.tensor(load_palette()[new]).view(3, 1)
        assert torch.equal(edited[:, m], colour.expand(3, int(m.sum())))
    edited, mask = edit_scene(scene, 0, (0.0, 1.0, 0.0))
    assert torch.equal(edited[:, mask[0].bool()][1], torch.ones(int(mask.sum())))
    assert scene.image.max() <= 1.0  # the scene itself was not modified
    with pytest.raises(IndexError):
        edit_scene(scene, len(scene.objects), "red")
    with pytest.raises(ValueError, match="unknown colour"):
        edit_scene(scene, 0, "mauve")
    with pytest.raises(ValueError, match="3 floats"):
        edit_scene(scene, 0, (2.0, 0.0, 0.0))


def test_generate_scene_validates_arguments() -> None:
    with pytest.raises(ValueError, match="seed"):
        generate_scene(-1)
    with pytest.raises(ValueError, match="size"):
        generate_scene(0, size=8)


# ----------------------------------------------------------------------------- photos


def test_photo_patches_load_with_segments() -> None:
    patches = load_photo_patches(64)
    assert len(patches) == sum(len(e["crops"]) for e in load_photos_spec()["images"])
    assert len({p.name for p in patches}) == len(patches)
    assert {"astronaut", "coffee", "chelsea", "rocket"} <= {p.name.split("/")[0] for p in patches}
    for p in patches:
        assert p.image.shape == (3, 64, 64) and p.image.dtype == torch.float32
        assert 0.0 <= float(p.image.min()) and float(p.image.max()) <= 1.0
        assert p.segments.shape == (64, 64) and p.segments.dtype == torch.int64
        labels = torch.unique(p.segments)
        assert labels.tolist() == list(range(len(labels)))  # contiguous from 0
        assert 4 <= len(labels) <= 40
    again = load_photo_patches(64)
    assert again is not patches and all(a is b for a, b in zip(again, patches, strict=True))


def test_photo_patch_matches_direct_crop() -> None:
    box = next(
        c["box"]
        for e in load_photos_spec()["images"]
        if e["source"] == "astronaut"
        for c in e["crops"]
        if c["name"] == "face"
    )
    top, left, h, w = box
    ref = resize(
        skimage.data.astronaut()[top : top + h, left : left + w] / 255.0,
        (32, 32),
        order=1,
        anti_aliasing=True,
    )
    patch = next(p for p in load_photo_patches(32) if p.name == "astronaut/face")
    assert np.allclose(patch.image.numpy().transpose(1, 2, 0), ref, atol=1e-6)


def test_photo_source_mismatch_is_an_error(root_copy: Path) -> None:
    spec_path = root_copy / "photos" / "photos_spec.json"
    spec = json.loads(spec_path.read_text())
    spec["images"][0]["source_sha256"] = "0" * 64
    spec_path.write_text(json.dumps(spec))
    _rebuild_manifest(root_copy, "photos")
    with pytest.raises(DataPackageError, match="source image 'astronaut' differs"):
        load_photo_patches(16, root=root_copy)


def test_photo_size_is_validated() -> None:
    with pytest.raises(ValueError, match="size"):
        load_photo_patches(4)


# ----------------------------------------------------------------------------- prompts


def test_prompts_schema_and_split_sizes() -> None:
    everything = load_prompts()
    train, heldout = load_prompts("train"), load_prompts("heldout")
    assert len(train) + len(heldout) == len(everything)
    assert len({p.id for p in everything}) == len({p.text for p in everything}) == len(everything)
    spec = load_shapes_spec()
    palette = load_palette()
    generate = [p for p in everything if p.task == "generate"]
    # Every combination of shape, colour, size, grid cell and background, once.
    n_layouts = len(HALF_EXTENTS) * len(CENTRES["horizontal"]) * len(CENTRES["vertical"])
    assert len(generate) == len(spec["shapes"]) * len(palette) * n_layouts * len(
        GENERATION_BACKGROUNDS
    )
    for p in everything:
        assert p.task in ("generate", "edit")
        a = p.attributes
        if a.colour is not None:
            assert a.rgb == palette[a.colour] and a.colour in p.text
        if a.shape is not None:
            assert a.shape in p.text
        assert -1.0 <= a.brightness <= 1.0 and -1.0 <= a.saturation <= 1.0
        if p.task == "generate":
            # A generation prompt says everything its target depends on, in words.
            assert None not in (a.colour, a.shape, a.size, a.horizontal, a.vertical)
            assert a.size in p.text and str(a.background).replace("_", " ") in p.text
            assert a.background_rgb == GENERATION_BACKGROUNDS[a.background]
            where = {a.horizontal, a.vertical} - {"centre", "middle"}
            assert all(w in p.text for w in where)
        else:
            assert a.size is a.horizontal is a.vertical is a.background is None
    assert {p.task for p in heldout} == {"generate", "edit"}
    # Held-out combinations: every word is seen in training, no held-out pair is.
    for key in ("colour", "shape", "size", "horizontal", "vertical", "background"):
        assert {getattr(p.attributes, key) for p in heldout} <= {
            getattr(p.attributes, key) for p in train
        }
    assert not {p.text for p in heldout} & {p.text for p in train}

    def pairs(prompts: list) -> set:
        a = [p.attributes for p in prompts]
        return {(x.colour, x.shape) for x in a if x.shape and x.colour}

    assert pairs(heldout) == set(HELDOUT_PAIRS)
    assert not pairs(heldout) & pairs(train)
    with pytest.raises(ValueError, match="split"):
        load_prompts("test")


def test_shipped_prompts_equal_the_generator_output() -> None:
    spec = load_shapes_spec()
    records = build_prompt_records(spec["palette"], spec["shapes"], GENERATION_BACKGROUNDS)
    assert read_package_file("prompts", "prompts.jsonl").decode("utf-8") == prompts_jsonl(records)


def test_prompts_must_agree_with_palette(root_copy: Path) -> None:
    spec_path = root_copy / "shapes" / "shapes_spec.json"
    spec_path.write_text(spec_path.read_text().replace("0.85, 0.15, 0.15", "0.8, 0.1, 0.1"))
    _rebuild_manifest(root_copy, "shapes")
    with pytest.raises(DataPackageError, match="differs from the spec"):
        load_prompts(root=root_copy)
