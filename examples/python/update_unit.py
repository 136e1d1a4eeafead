#!/usr/bin/env python3
"""Scripting an update with the Python binding (bindings/python).

    PYTHONPATH=bindings/python FLASHER_LIBRARY=build/libflasher/libflasher.so \
        examples/python/update_unit.py /dev/ttyACM0 fw-1.2.0.pkg
"""
import sys

import flasher


def main(port, package_path):
    pkg = flasher.Package(package_path)  # opened and fully verified
    with flasher.Session(port) as unit:
        before = unit.info()
        print(f"unit {before['uid']} ({before['product']}) runs {before['version'] or 'no firmware yet'}, "
              f"updating to {pkg.version}")

        def progress(p):
            if p["bytes_total"]:
                print(f"\r{p['phase']:9} {100 * p['bytes_done'] // p['bytes_total']:3d}%", end="", flush=True)

        result = unit.update(pkg, progress=progress)
        print(f"\nnow runs {result['after']['version']} ({result['after']['state']}), "
              f"{result['sent_bytes']} bytes sent, {result['resumed_bytes']} resumed")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: update_unit.py PORT PACKAGE")
    try:
        main(sys.argv[1], sys.argv[2])
    except flasher.Error as e:
        sys.exit(f"update failed: {e.name}: {e.detail}")
