"""A DOCX that is small on the wire and huge unpacked, submitted to the REST API: how fast it is refused, how much
memory the refusal costs, and whether that memory comes back (issue 23, item 2).

The fault probe's file was 711 KB, its document.xml unpacking to 250 MB: it held the service for 126 s and 3 GB of
RSS, 2.7 GB of which stayed. This builds the same kind of file (a real Word package whose body repeats one paragraph
until the part reaches ``--unpacked-mb``), posts it to the app in-process (the path `graphdex serve` runs), and
reports the answer, its time, and the process's RSS before, at peak (VmHWM, reset just before) and after.

    python bench/office_bomb.py --unpacked-mb 250 --out bench/results/office-bomb.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import io
import tempfile
import time
import zipfile
from pathlib import Path

from harness import console, machine, scratch_settings, write_json

PARAGRAPH = b"<w:p><w:r><w:t>The lake was calm and the boats were out before dawn.</w:t></w:r></w:p>"


def docx_bomb(unpacked_bytes: int) -> bytes:
    """A valid Word package (python-docx's default template) whose document.xml body holds ``unpacked_bytes`` of
    repeated paragraphs, written to the zip in pieces so building it never holds the unpacked part."""
    import docx

    template = io.BytesIO()
    docx.Document().save(template)
    out = io.BytesIO()
    with zipfile.ZipFile(template) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                package.writestr(item, source.read(item.filename))
                continue
            original = source.read(item.filename)
            head, tail = original.split(b"<w:body>", 1)
            info = zipfile.ZipInfo("word/document.xml")
            info.compress_type = zipfile.ZIP_DEFLATED
            with package.open(info, "w", force_zip64=True) as part:
                part.write(head + b"<w:body>")
                block = PARAGRAPH * 10_000
                for _ in range(max(1, unpacked_bytes // len(block))):
                    part.write(block)
                part.write(tail)
    return out.getvalue()


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unpacked-mb", type=int, default=250, help="size document.xml unpacks to (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from graphdex.api.app import create_app
    from graphdex.api.workspace import Workspace

    data = docx_bomb(args.unpacked_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="graphdex-bomb-") as directory:
        workspace = Workspace(scratch_settings(Path(directory), max_request_bytes=max(20_000_000, 2 * len(data))))
        with TestClient(create_app(workspace=workspace)) as client:
            before = _rss_mib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            began = time.perf_counter()
            response = client.post("/documents", files=[("files", ("bomb.docx", data, "application/octet-stream"))])
            seconds = time.perf_counter() - began
            peak, after = _rss_mib("VmHWM"), _rss_mib("VmRSS")
        workspace.close()
    result = {"benchmark": "office_bomb", "machine": machine(), "file_bytes": len(data), "unpacked_mb": args.unpacked_mb,
              "status": response.status_code, "answer": response.json(), "seconds": round(seconds, 3),
              "rss_before_mib": round(before, 1), "rss_peak_mib": round(peak, 1), "rss_after_mib": round(after, 1),
              "peak_growth_mib": round(peak - before, 1), "held_after_mib": round(after - before, 1)}
    console.print(f"{len(data):,}-byte DOCX unpacking to {args.unpacked_mb} MB: {response.status_code} in {seconds:.2f} s; "
                  f"RSS {before:.0f} -> peak {peak:.0f} -> {after:.0f} MiB; {str(result['answer'])[:200]}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
