"""Where `faceguard anonymize` writes each output, decided before any image is read, so that no input and
no earlier output is ever overwritten by accident.

    anonymize photos/ -o out/              out/<path under photos>
    anonymize photos/ more/ x.jpg -o out/  out/photos/<path under photos>, out/more/<...>, out/x.jpg
    anonymize photo.jpg -o masked.jpg      a single input to a file
    anonymize photo.png -o masked.jpg      ... written as the format its name says (here JPEG)
    anonymize - -o -                       standard input to standard output

A plan is refused (`UsageError`, exit 2) when an output would be an input, two
outputs would be one file (`a/x.jpg b/x.jpg`: name their folders instead), or an
output exists already without `--overwrite` (which replaces earlier outputs,
never inputs), and when `-o` names an image file that cannot be one (a GIF, or
a `.jpg` for several inputs or a folder), rather than making a folder of that
name. Inputs that are images we do not read (GIF, HEIC, ...) or that
say they are images and are not are listed as failed; other files met in a
folder (a README, earlier metadata) are listed as skipped and do not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from consumer.errors import FaceguardError, NotAnImage, UnsupportedImage
from consumer.imaging.decode import sniff_format
from consumer.imaging.types import IMAGE_SUFFIXES, ImageFormat

STDIO = Path("-")
SNIFF_BYTES = 64  # enough of a file's head to name its format
# Suffixes of image formats we read or write neither: `-o x.gif` is refused rather than taken for a folder.
FOREIGN_IMAGE_SUFFIXES = frozenset({".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl", ".jp2"})


class UsageError(FaceguardError):
    """The command line cannot be carried out as given: exit 2 with this one line."""


@dataclass(frozen=True)
class Target:
    """One input and the file its output goes to (`STDIO`: standard output)."""

    source: Path  # `STDIO`: standard input
    output: Path
    format: ImageFormat | None = None  # the format to write; None: the input's


@dataclass(frozen=True)
class Plan:
    targets: list[Target]
    failed: list[tuple[Path, str]]  # inputs that will not be masked, and why: they count as failures
    skipped: list[tuple[Path, str]]  # files in an input folder that are not images at all


@dataclass(frozen=True)
class Found:
    """A file to mask, where its output goes below the output folder, and its format."""

    source: Path
    relative: Path
    format: ImageFormat


def plan(inputs: list[Path], output: Path, overwrite: bool, with_metadata: bool, preview: bool = False) -> Plan:
    """Where each input's output goes. Raises UsageError (exit 2) for a plan that would destroy a file."""
    if STDIO in inputs or output == STDIO:
        return stdio_plan(inputs, output)
    check_writable(output)
    found, failed, skipped = expand(inputs, exclude=output)
    if not found and not failed:
        raise UsageError(f"no image files found in {', '.join(map(str, inputs))}")
    single = len(inputs) == 1 and inputs[0].is_file()
    named_as_image = not output.exists() and output.suffix.lower() in IMAGE_SUFFIXES
    if single and (output.is_file() or named_as_image):
        targets = [Target(f.source, output, format_named(output)) for f in found]
    else:
        if named_as_image:
            what = f"{len(inputs)} inputs" if len(inputs) > 1 else f"the images in {inputs[0]}"
            raise UsageError(f"-o {output} names an image file, but {what} are written into a folder: name a folder")
        check_folder(output, len(inputs))
        targets = [Target(f.source, output / named(f.relative, f.format, preview)) for f in found]
    check(targets, overwrite, with_metadata)
    return Plan(targets, failed, skipped)


def stdio_plan(inputs: list[Path], output: Path) -> Plan:
    check_writable(output)
    if inputs != [STDIO] and output == STDIO and len(inputs) != 1:
        raise UsageError("-o - writes one image to standard output: give one input")
    if inputs == [STDIO]:
        if output != STDIO and output.is_dir():
            raise UsageError(f"-o {output} is a folder: with input -, name a file or - (standard output)")
        return Plan([Target(STDIO, output, format_named(output))], [], [])
    if STDIO in inputs:
        raise UsageError("- (standard input) cannot be given with other inputs")
    [source] = inputs
    if not source.is_file():
        raise UsageError(f"-o - writes one image to standard output: {source} is not a file")
    return Plan([Target(source, STDIO)], [], [])


def expand(inputs: list[Path], exclude: Path) -> tuple[list[Found], list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Every file under `inputs` (folders recursively, sorted; an output folder `exclude` inside an input folder
    left out): those to mask, those that fail (images we do not read, files named as images that are not), and
    the other files of folders (not images: skipped)."""
    found: list[Found] = []
    failed: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    excluded = exclude.resolve()
    for path in inputs:
        if not path.exists():
            raise UsageError(f"{path} does not exist")
        is_folder = path.is_dir()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if is_folder else [path]
        prefix = Path(path.resolve().name) if is_folder and len(inputs) > 1 else Path()
        for file in files:
            resolved = file.resolve()
            inside_output = path.resolve() in excluded.parents and excluded in resolved.parents
            if resolved in seen or inside_output:  # an output folder within this input folder is not input
                continue
            seen.add(resolved)
            relative = prefix / file.relative_to(path) if is_folder else Path(file.name)
            try:
                with file.open("rb") as stream:
                    found.append(Found(file, relative, sniff_format(stream.read(SNIFF_BYTES))))
            except OSError as exc:
                failed.append((file, f"cannot be read: {exc.strerror}"))
            except UnsupportedImage as exc:
                failed.append((file, str(exc)))
            except NotAnImage:
                not_image = (file, "not a JPEG, PNG, BMP or WebP image")
                named_as_image = not is_folder or file.suffix.lower() in IMAGE_SUFFIXES
                (failed if named_as_image else skipped).append(not_image)
    return found, failed, skipped


def named(relative: Path, image_format: ImageFormat, preview: bool) -> Path:
    """`relative`, its suffix made the format's own where it names another (a PNG called .jpg: x.jpg.png), and
    `.preview` before it for a preview."""
    own = relative.suffix.lower() in image_format.suffixes
    stem, ext = (relative.stem, relative.suffix) if own else (relative.name, image_format.extension)
    return relative.with_name(f"{stem}{'.preview' if preview else ''}{ext}")


def format_named(output: Path) -> ImageFormat | None:
    """The format an output file's suffix names (`.jpg`, `.jpeg`, `.png`, `.bmp`, `.webp`), or None."""
    suffix = output.suffix.lower()
    return next((f for f in ImageFormat if suffix in f.suffixes), None)


def check_writable(output: Path) -> None:
    """Refuse an output named as an image in a format we do not write (unless it is a folder already)."""
    suffix = output.suffix.lower()
    if suffix in FOREIGN_IMAGE_SUFFIXES and not output.is_dir():
        raise UsageError(f"-o {output}: {suffix[1:].upper()} is not written; name a .jpg, .png, .bmp or .webp file")


def check_folder(output: Path, inputs: int) -> None:
    if output.exists() and not output.is_dir():
        raise UsageError(
            f"-o {output} is a file: give a folder for {inputs} inputs, or a file only for a single input file"
        )
    for parent in output.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"-o {output} cannot be a folder: {parent} is a file")


def check(targets: list[Target], overwrite: bool, with_metadata: bool) -> None:
    """Refuse outputs that are inputs, that collide, or that exist without `overwrite`."""
    inputs = {t.source.resolve() for t in targets}
    written: dict[Path, Path] = {}
    for target in targets:
        files = [target.output] + ([target.output.with_name(target.output.name + ".json")] if with_metadata else [])
        for file in files:
            resolved = file.resolve()
            if resolved in inputs:
                raise UsageError(f"refusing to write {file}: it is an input, and masking it would destroy it")
            if (other := written.get(resolved)) is not None:
                raise UsageError(
                    f"{other} and {target.source} would both be written to {file}: give their folders instead"
                )
            written[resolved] = target.source
            if file.exists() and not overwrite:
                raise UsageError(f"{file} exists: pass --overwrite to replace earlier outputs")
