"""`faceguard anonymize` and the command line's manners, driven as a person drives them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.support import BIN, SAMPLES, SHARED_DATA, decode, images_with_large_faces

GPS_IFD = 0x8825

FACEGUARD = str(BIN / "faceguard")


def run(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([FACEGUARD, *args], input=stdin, capture_output=True, timeout=300, env={**os.environ, **env})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_of_photos(root: Path) -> Path:
    photos = root / "photos"
    (photos / "a").mkdir(parents=True)
    (photos / "b").mkdir()
    shutil.copy(SAMPLES / "astronaut.png", photos / "a" / "x.png")
    shutil.copy(SAMPLES / "coffee.png", photos / "b" / "x.png")
    shutil.copy(SAMPLES / "chelsea.png", photos / "top.png")
    return photos


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_masking_in_place_is_refused_and_leaves_the_inputs_untouched(tmp_path: Path) -> None:
    photos = folder_of_photos(tmp_path)
    before = {p: digest(p) for p in photos.rglob("*.png")}
    done = run("anonymize", str(photos), "-o", str(photos))
    assert done.returncode == 2
    assert "it is an input, and masking it would destroy it" in one_line_error(done)
    single = run("anonymize", str(photos / "top.png"), "-o", str(photos / "top.png"))
    assert single.returncode == 2
    assert "it is an input" in one_line_error(single)
    assert {p: digest(p) for p in photos.rglob("*.png")} == before
    assert sorted(photos.rglob("*")) == sorted([photos / "a", photos / "b", *before])  # nothing written beside


def test_same_names_in_different_folders_do_not_collide(tmp_path: Path) -> None:
    photos = folder_of_photos(tmp_path)
    out = tmp_path / "out"
    done = run("anonymize", str(photos / "a"), str(photos / "b"), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["a/x.png", "b/x.png"]
    files = run("anonymize", str(photos / "a" / "x.png"), str(photos / "b" / "x.png"), "-o", str(tmp_path / "f"))
    assert files.returncode == 2
    assert "would both be written to" in one_line_error(files)
    assert not (tmp_path / "f").exists()
    whole = run("anonymize", str(photos), "-o", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    assert sorted(p.relative_to(tmp_path / "whole").as_posix() for p in (tmp_path / "whole").rglob("*")) == [
        "a",
        "a/x.png",
        "b",
        "b/x.png",
        "top.png",
    ]


def test_a_rerun_needs_overwrite_and_overwrite_never_touches_inputs(tmp_path: Path) -> None:
    photos = folder_of_photos(tmp_path)
    out = tmp_path / "out"
    assert run("anonymize", str(photos), "-o", str(out)).returncode == 0
    again = run("anonymize", str(photos), "-o", str(out))
    assert again.returncode == 2
    assert "exists: pass --overwrite to replace earlier outputs" in one_line_error(again)
    assert run("anonymize", str(photos), "-o", str(out), "--overwrite").returncode == 0
    refused = run("anonymize", str(photos), "-o", str(photos), "--overwrite")
    assert refused.returncode == 2
    assert "it is an input" in one_line_error(refused)


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tmp_path: Path) -> None:
    photos = folder_of_photos(tmp_path)
    assert run("anonymize", str(photos), "-o", str(photos / "masked")).returncode == 0
    second = run("anonymize", str(photos), "-o", str(photos / "masked"), "--overwrite")
    assert second.returncode == 0, second.stderr
    assert not (photos / "masked" / "masked").exists()


def test_unsupported_files_are_listed_with_their_reason_and_the_exit_status_says_so(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(SAMPLES / "astronaut.png", mixed / "ok.png")
    (mixed / "anim.gif").write_bytes(b"GIF89a" + b"\x00" * 64)
    (mixed / "notes.txt").write_text("not a photo")
    (mixed / "fake.jpg").write_text("not a photo either, whatever its name says")
    done = run("anonymize", str(mixed), "-o", str(tmp_path / "out"))
    assert done.returncode == 1
    errors = done.stderr.decode()
    assert "anim.gif: not masked: GIF images are not supported" in errors
    assert "fake.jpg: not masked: not a JPEG, PNG, BMP or WebP image" in errors
    assert "notes.txt: skipped: not a JPEG, PNG, BMP or WebP image" in errors
    assert "masked 1 of 3 images" in errors
    assert "(1 other files skipped)" in errors
    assert (tmp_path / "out" / "ok.png").exists()

    only = tmp_path / "only"
    only.mkdir()
    (only / "a.gif").write_bytes(b"GIF89a" + b"\x00" * 64)
    (only / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    unsupported = run("anonymize", str(only), "-o", str(tmp_path / "none"))
    assert unsupported.returncode == 1
    assert "masked 0 of 2 images" in unsupported.stderr.decode()
    assert "HEIC images are not supported" in unsupported.stderr.decode()

    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = run("anonymize", str(empty), "-o", str(tmp_path / "x"))
    assert nothing.returncode == 2
    assert "no image files found" in one_line_error(nothing)


def test_bad_output_paths_and_option_values_get_one_line_and_exit_2(tmp_path: Path) -> None:
    photos = folder_of_photos(tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for output, message in ((a_file, "is a file"), (a_file / "sub", "file.txt is a file")):
        done = run("anonymize", str(photos), "-o", str(output))
        assert done.returncode == 2
        assert message in one_line_error(done)
    missing = run("anonymize", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert "does not exist" in one_line_error(missing)
    for option, value in (("--strength", "2"), ("--strength", "0"), ("--margin", "-1"), ("--jobs", "0")):
        bad = run("anonymize", str(photos), "-o", str(tmp_path / "o"), option, value)
        assert bad.returncode == 2
        last = bad.stderr.decode().strip().splitlines()[-1]
        assert last.startswith(f"faceguard anonymize: error: argument {option}"), last
        assert "pydantic" not in bad.stderr.decode()


def test_an_output_file_is_written_in_the_format_its_name_says_and_never_made_a_folder(tmp_path: Path) -> None:
    photo = SAMPLES / "astronaut.png"
    jpeg = b"\xff\xd8\xff"
    for name, head, said in (
        ("masked.jpg", jpeg, "jpeg"),
        ("masked.JPEG", jpeg, "jpeg"),
        ("masked.webp", b"RIFF", "webp"),
    ):
        done = run("anonymize", str(photo), "-o", str(tmp_path / name), "--metadata")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / name).read_bytes().startswith(head), name
        assert json.loads((tmp_path / f"{name}.json").read_text())["image"]["format"] == said
    preview = run("anonymize", str(photo), "-o", str(tmp_path / "preview.jpg"), "--preview")
    assert preview.returncode == 0, preview.stderr
    assert (tmp_path / "preview.jpg").read_bytes().startswith(b"\xff\xd8\xff")
    piped = run("anonymize", "-", "-o", str(tmp_path / "piped.bmp"), stdin=photo.read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "piped.bmp").read_bytes().startswith(b"BM")
    photos = folder_of_photos(tmp_path)
    refusals = (
        ([str(photo)], "masked.gif", "GIF is not written"),
        (["-"], "piped.tiff", "TIFF is not written"),
        (
            [str(photo), str(SAMPLES / "coffee.png")],
            "two.jpg",
            "names an image file, but 2 inputs are written into a folder",
        ),
        ([str(photos)], "folder.png", f"but the images in {photos} are written into a folder"),
    )
    for inputs, name, message in refusals:
        refused = run("anonymize", *inputs, "-o", str(tmp_path / name), stdin=photo.read_bytes())
        assert refused.returncode == 2
        assert message in one_line_error(refused)
        assert not (tmp_path / name).exists()


def test_a_wide_gamut_photo_keeps_its_colour_profile_and_loses_its_location(tmp_path: Path) -> None:
    """An Adobe RGB photo with GPS in its EXIF: the masked copy says which colours its pixels are, and not
    where it was taken."""
    photo = SHARED_DATA / "large" / "deepface_img39.jpg"
    with Image.open(photo) as original:
        profile = original.info["icc_profile"]
        assert original.getexif().get_ifd(GPS_IFD)
    for name in ("masked.jpg", "masked.png", "masked.webp"):
        done = run("anonymize", str(photo), "-o", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        with Image.open(tmp_path / name) as output:
            assert output.info.get("icc_profile") == profile, name
            assert not output.getexif().get_ifd(GPS_IFD), name
            assert output.size == original.size


def test_weaker_options_are_applied_and_said(tmp_path: Path) -> None:
    out_default, out_weak = tmp_path / "default.png", tmp_path / "weak.png"
    assert run("anonymize", str(SAMPLES / "astronaut.png"), "-o", str(out_default)).returncode == 0
    weak = run(
        "anonymize",
        str(SAMPLES / "astronaut.png"),
        "-o",
        str(out_weak),
        "--strength",
        "0.1",
        "--margin",
        "0",
        "--shape",
        "ellipse",
    )
    assert weak.returncode == 0, weak.stderr
    said = weak.stderr.decode()
    assert "applying options weaker than the service's defaults" in said
    assert "--strength 0.1 (default 1)" in said
    assert "--margin 0 (default 0.35)" in said
    assert out_weak.read_bytes() != out_default.read_bytes()


def test_a_single_file_stdin_and_stdout(tmp_path: Path) -> None:
    photo = SAMPLES / "astronaut.png"
    single = run("anonymize", str(photo), "-o", str(tmp_path / "masked.png"))
    assert single.returncode == 0, single.stderr
    piped = run("anonymize", "-", "-o", "-", stdin=photo.read_bytes())
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == (tmp_path / "masked.png").read_bytes()
    decode(piped.stdout)
    to_stdout = run("anonymize", str(photo), "-o", "-")
    assert to_stdout.stdout == piped.stdout
    refused = run("anonymize", "-", "-o", "-", stdin=b"not an image")
    assert refused.returncode == 1
    assert b"not masked" in refused.stderr


def test_jobs_2_gives_the_same_outputs_as_jobs_1(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in images_with_large_faces(6):
        shutil.copy(image.path, photos / image.path.name)
    for jobs in ("1", "2"):
        done = run("anonymize", str(photos), "-o", str(tmp_path / f"out{jobs}"), "--jobs", jobs, "--metadata")
        assert done.returncode == 0, done.stderr
    one = {p.name: p.read_bytes() for p in (tmp_path / "out1").glob("*.jpg")}
    two = {p.name: p.read_bytes() for p in (tmp_path / "out2").glob("*.jpg")}
    assert len(one) == 6
    assert one == two


def test_version_help_and_log_format(tmp_path: Path) -> None:
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.decode().startswith("faceguard ")
    for name in ("anonymize", "submit", "collect", "serve", "probe", "topics", "eval", "dlq"):
        helped = run(name, "--help")
        assert helped.returncode == 0
        assert "example:" in helped.stdout.decode(), name
    worker_help = run("worker", "--help").stdout.decode()
    assert "configured by environment variables" in worker_help
    assert "KAFKA_BOOTSTRAP_SERVERS" in worker_help
    assert "FACEGUARD_PRESET" in worker_help
    # Not a terminal: JSON lines; an explicit setting wins.
    logged = run("anonymize", str(SAMPLES / "astronaut.png"), "-o", str(tmp_path / "a.png"))
    assert logged.stderr.decode().lstrip().startswith("{")
    text = run("anonymize", str(SAMPLES / "astronaut.png"), "-o", str(tmp_path / "b.png"), FACEGUARD_LOG_FORMAT="text")
    assert not text.stderr.decode().lstrip().startswith("{")


@pytest.mark.parametrize("command", [["submit", str(SAMPLES / "astronaut.png")], ["collect", "-o", "out"]])
def test_a_down_broker_gives_a_few_clear_lines_within_a_bounded_wait(command: list[str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    started = time.monotonic()
    done = run(*command, "--timeout", "3", KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}", FACEGUARD_LOG_FORMAT="text")
    elapsed = time.monotonic() - started
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert elapsed < 30
    assert len(lines) <= 8, lines
    assert any("cannot reach Kafka" in line for line in lines), lines
    assert not any(line.startswith("%") for line in lines)  # librdkafka's raw lines go through our formatter
