"""Test images made on the fly (nothing from ../shared/data is copied into the repo)."""

from __future__ import annotations

from pathlib import Path

from PIL import ExifTags, Image

from tests.support import SAMPLES

# The astronaut's face in samples/astronaut.png, as BlazeFace full-range reports it.
ASTRONAUT_FACE = (173, 67, 103, 103)
# Boxes the default preset may report on the astronaut photo: the face, two patches of the suit below it
# (37 and 43 px, scores 0.52 and 0.41) and one right of the face (37 px, 0.31), measured. When in doubt, mask.
ASTRONAUT_MOST_BOXES = 4


def exif_rotated_astronaut(path: Path) -> tuple[int, int]:
    """Write a JPEG whose stored pixels are the upper 512x384 of the astronaut turned a quarter
    counter-clockwise, with EXIF orientation 6 (display rotated clockwise) and a GPS position.
    Returns the upright (width, height) a correct decoder shows: (512, 384)."""
    upright = Image.open(SAMPLES / "astronaut.png").convert("RGB").crop((0, 0, 512, 384))
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    stored.save(path, "JPEG", exif=exif, quality=95)
    return upright.size


def upright_astronaut_crop() -> Image.Image:
    return Image.open(SAMPLES / "astronaut.png").convert("RGB").crop((0, 0, 512, 384))


def has_gps(data: bytes, path: Path) -> bool:
    path.write_bytes(data)
    with Image.open(path) as image:
        return bool(image.getexif().get_ifd(ExifTags.IFD.GPSInfo))
