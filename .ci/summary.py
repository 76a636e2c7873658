"""Seconds per test file from pytest's JUnit report, and the fault suite's total (issue 4)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def main(report: str) -> None:
    per_file: Counter[str] = Counter()
    for case in ET.parse(report).iter("testcase"):  # noqa: S314
        # classname is the module (tests.e2e.test_x), or module.Class for a test class.
        module = case.get("classname", "")
        if module.rsplit(".", 1)[-1][:1].isupper():
            module = module.rsplit(".", 1)[0]
        per_file[module] += float(case.get("time", 0))
    for name, seconds in per_file.most_common(15):
        print(f"{seconds:7.1f}s  {name}")
    faults = sum(s for name, s in per_file.items() if ".test_fault_" in name)
    print(f"fault suite (tests/e2e/test_fault_*.py): {faults:.0f}s")
    print(f"all tests: {sum(per_file.values()):.0f}s")


if __name__ == "__main__":
    main(sys.argv[1])
