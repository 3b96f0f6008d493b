"""The extraction sandbox: time and memory limits that really fire, and recovery after them."""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.core.indexing.extract import ExtractError
from desktop.core.indexing.extract.sandbox import ExtractionSandbox

pytestmark = pytest.mark.timeout(120)

PDFS = Path(__file__).parents[2] / "shared" / "eval" / "pdfs"
SLOW_PDF = PDFS / "pysample_009_GeoTopo-komprimiert.pdf"  # 117 pages: seconds of work for pypdf


def write_pdf(path: Path, content: bytes) -> Path:
    """Write a one-page PDF whose Flate-compressed content stream is ``content``."""
    data = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Filter /FlateDecode /Length %d >>\nstream\n" % len(data) + data + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


@pytest.fixture
def small_pdf(tmp_path: Path) -> Path:
    return write_pdf(tmp_path / "small.pdf", b"BT /F1 12 Tf 72 700 Td (Hello small world) Tj ET")


@pytest.fixture
def bomb_pdf(tmp_path: Path) -> Path:
    """200 KB on disk, a 70 MB content stream once inflated (pypdf needs ~390 MB for it)."""
    line = b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET\n"
    return write_pdf(tmp_path / "bomb.pdf", line * (70_000_000 // len(line)))


@pytest.fixture
def box() -> Iterator[ExtractionSandbox]:
    with ExtractionSandbox(timeout_s=30) as sandbox:
        yield sandbox


def test_extracts_in_a_persistent_child(box: ExtractionSandbox, small_pdf: Path) -> None:
    box.start()
    pid = box.pid
    assert pid is not None and pid != os.getpid()
    start = time.perf_counter()
    for _ in range(50):
        result = box.extract(small_pdf)
    per_call = (time.perf_counter() - start) / 50
    assert result.text == "Hello small world"
    assert result.sections[0].page == 1
    assert box.pid == pid and box.starts == 1
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per call"


def test_file_reasons_pass_through(box: ExtractionSandbox, tmp_path: Path) -> None:
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(ExtractError, match="binary data, not text"):
        box.extract(binary)
    with pytest.raises(ExtractError, match="password is required"):
        box.extract(PDFS / "pdfminer_enc_rc4-128.pdf")
    assert box.starts == 1


def test_deleted_file(box: ExtractionSandbox, small_pdf: Path) -> None:
    box.start()
    small_pdf.unlink()
    with pytest.raises(ExtractError, match="file not found"):
        box.extract(small_pdf)


def test_timeout_kills_the_child_and_the_next_call_works(small_pdf: Path) -> None:
    with ExtractionSandbox(timeout_s=0.3) as box:
        box.start()
        first = box.pid
        start = time.perf_counter()
        with pytest.raises(ExtractError, match=r"^extraction timed out after 0\.3 s$"):
            box.extract(SLOW_PDF)
        assert time.perf_counter() - start < 2
        assert box.pid is None
        assert box.extract(small_pdf).text == "Hello small world"
        assert box.pid not in (None, first) and box.starts == 2


def test_memory_limit_fires_and_the_next_call_works(bomb_pdf: Path, small_pdf: Path) -> None:
    # The child idles at ~65 MB of address space; the bomb needs several hundred MB.
    with ExtractionSandbox(timeout_s=60, memory_mb=200) as box:
        with pytest.raises(ExtractError, match=r"^extraction used more than 200 MB of memory$"):
            box.extract(bomb_pdf)
        assert box.extract(small_pdf).text == "Hello small world"
        assert box.starts == 2


def test_crash_is_reported_and_the_next_call_works(small_pdf: Path) -> None:
    with ExtractionSandbox(timeout_s=60) as box:
        box.start()
        victim = box.pid
        assert victim is not None
        killer = threading.Timer(0.3, os.kill, (victim, signal.SIGSEGV))
        killer.start()
        try:
            with pytest.raises(ExtractError, match=r"^extractor crashed \(signal 11\)$"):
                box.extract(SLOW_PDF)
        finally:
            killer.cancel()
        assert box.extract(small_pdf).text == "Hello small world"
        assert box.starts == 2


def test_child_that_died_while_idle_is_replaced(box: ExtractionSandbox, small_pdf: Path) -> None:
    box.start()
    victim = box.pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while box.pid is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert box.extract(small_pdf).text == "Hello small world"
    assert box.starts == 2


def test_close_ends_the_child(small_pdf: Path) -> None:
    box = ExtractionSandbox()
    box.extract(small_pdf)
    pid = box.pid
    assert pid is not None
    box.close()
    assert box.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        box.extract(small_pdf)
