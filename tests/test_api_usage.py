"""The API page's table of which chapter calls which public function is current."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("api_usage", ROOT / "tools" / "api_usage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chapter_usage_table_is_current():
    assert _tool().main(["--check"]) == 0, "run: python tools/api_usage.py"


def test_usage_finds_attribute_calls_imports_and_dotted_names(tmp_path):
    notebook = tmp_path / "01_demo.ipynb"
    source = ("import atf_lite as atf\nfrom atf_lite import (tangent_kernel,\n    mlp as net)\n"
              "atf.label_kernel(y)\natf_lite.alignment.kernel_alignment(K, K)\n")
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))
    assert _tool().names_used(notebook) == {"tangent_kernel", "mlp", "label_kernel",
                                            "kernel_alignment"}
