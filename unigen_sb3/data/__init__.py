"""Versioned data packages (manifest + files) and their loaders."""

from unigen_sb3.data.packages import (
    DataPackageError,
    list_packages,
    load_manifest,
    package_dir,
    verify_package,
)
from unigen_sb3.data.photos import PhotoPatch, load_photo_patches
from unigen_sb3.data.prompts import Prompt, load_prompts
from unigen_sb3.data.shapes import ShapeScene, edit_scene, generate_scene

__all__ = [
    "DataPackageError",
    "PhotoPatch",
    "Prompt",
    "ShapeScene",
    "edit_scene",
    "generate_scene",
    "list_packages",
    "load_manifest",
    "load_photo_patches",
    "load_prompts",
    "package_dir",
    "verify_package",
]
