"""Every script the patients' page runs parses as JavaScript (``node --check``): one
syntax error in the load script stops the page noting what is sent, and no question is
answered. Node comes with npm, which ``make browser`` uses for axe-core."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from assistant.web import scripts

SCRIPTS = {name: value for name, value in vars(scripts).items()
           if name.endswith("_JS") and isinstance(value, str) and value.lstrip().startswith("(")}


def test_the_page_has_its_scripts():
    assert {"READ_SESSION_JS", "SAVE_SESSION_JS", "SEND_JS", "BOOKING_FOCUS_JS"} <= set(SCRIPTS)


@pytest.mark.skipif(shutil.which("node") is None, reason="node (from make browser) is needed")
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_page_script_parses(name, tmp_path):
    path = tmp_path / f"{name}.js"
    path.write_text(f"const script = {SCRIPTS[name]};\n", encoding="utf-8")
    checked = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
