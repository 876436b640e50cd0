#!/usr/bin/env python3
"""Download one distribution file of a PyPI package without building or installing anything.

`pip download` of a source distribution first prepares its metadata, which for projects built with
CMake means compiling build tools. This asks pip's own package finder (same index, certificates and
proxy settings as pip) for the file's link, streams it with pip's session and checks the sha256 the
index publishes.

usage: pypi_fetch.py NAME VERSION DEST_DIR [--sdist]      prints the path of the file
"""
import hashlib
import os
import sys

from pip._internal.index.collector import LinkCollector
from pip._internal.index.package_finder import PackageFinder
from pip._internal.models.format_control import FormatControl
from pip._internal.models.search_scope import SearchScope
from pip._internal.models.selection_prefs import SelectionPreferences
from pip._internal.network.session import PipSession
from pip._vendor.packaging.specifiers import SpecifierSet


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    name, version, dest = sys.argv[1:4]
    sdist = "--sdist" in sys.argv[4:]
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    session = PipSession()
    scope = SearchScope.create(find_links=[], index_urls=[index], no_index=False)
    formats = FormatControl({":all:"}, set()) if sdist else FormatControl(set(), set())
    finder = PackageFinder.create(
        link_collector=LinkCollector(session=session, search_scope=scope),
        selection_prefs=SelectionPreferences(allow_yanked=False, format_control=formats),
    )
    best = finder.find_best_candidate(name, specifier=SpecifierSet("==" + version)).best_candidate
    if best is None:
        sys.exit(f"{name}=={version} ({'sdist' if sdist else 'any file'}) not found on {index}")
    link = best.link
    os.makedirs(dest, exist_ok=True)
    target = os.path.join(dest, link.filename)
    if os.path.exists(target) and os.path.getsize(target) > 0:
        print(target)
        return
    digest = hashlib.sha256()
    tmp = target + ".part"
    print(f"downloading {link.filename} from PyPI ...", file=sys.stderr)
    with session.get(link.url, stream=True) as resp:
        resp.raise_for_status()
        total = int(resp.headers.get("content-length", 0))
        done = 0
        with open(tmp, "wb") as out:
            for chunk in resp.iter_content(chunk_size=1 << 20):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if total and sys.stderr.isatty():
                    print(f"\r  {done >> 20}/{total >> 20} MiB", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if link.hash_name == "sha256" and link.hash and digest.hexdigest() != link.hash:
        os.unlink(tmp)
        sys.exit(f"sha256 mismatch for {link.filename}: got {digest.hexdigest()}, index says {link.hash}")
    os.replace(tmp, target)
    print(target)


if __name__ == "__main__":
    main()
