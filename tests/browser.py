"""Playwright over the system's Chromium (Debian package), headless and offline; axe-core
(npm, installed by `make browser`) injected into pages for the accessibility tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from assistant.config import PACKAGE_ROOT

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return os.environ.get("SCARGUIDE_CHROMIUM") or shutil.which("chromium")


@contextmanager
def browser_page(artifacts: Path, width: int = 1100, height: int = 900,
                 bypass_csp: bool = False, color_scheme: str = "light"):
    """A page in a new headless Chromium. ``bypass_csp``: let a test inject a script (axe)
    into a page whose Content-Security-Policy allows none (the guide, the staff console)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is not installed: `make browser` installs Debian's chromium")
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": width, "height": height},
                                      bypass_csp=bypass_csp, color_scheme=color_scheme)
        page = context.new_page()
        page.set_default_timeout(120_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


# -- axe-core: accessibility checks in the page --------------------------------------------

AXE = PACKAGE_ROOT / ".axe" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")  # the impacts a test fails on

# axe's violations, and two checks of our own (as violations of their own rule ids):
# - "color-contrast-invisible": text the colour of its background. axe leaves such text
#   "to review" (it takes a 1:1 ratio as meant to be hidden), as it did the patient page's
#   notice on the dark theme;
# - "placeholder-contrast": a placeholder under 4.5:1 on its field (axe checks no
#   placeholder).
_RUN_AXE = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations', 'incomplete']});
  const node = n => ({target: n.target, impact: n.impact, html: n.html.slice(0, 240),
                      summary: n.failureSummary || (n.any[0] || {}).message || ''});
  const found = r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        helpUrl: v.helpUrl, nodes: v.nodes.map(node)}));
  const invisible = r.incomplete.filter(v => v.id === 'color-contrast').flatMap(
    v => v.nodes.filter(n => n.any.some(c => (c.data || {}).messageKey === 'equalRatio')));
  if (invisible.length) {
    found.push({id: 'color-contrast-invisible', impact: 'serious',
                help: 'Text must not be the colour of its background', helpUrl: '',
                nodes: invisible.map(n => ({...node(n), impact: 'serious'}))});
  }
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length === 3 || c[3] > 0)) { return c.slice(0, 3); }
    }
    return [255, 255, 255];
  };
  const faint = [...document.querySelectorAll('input[placeholder], textarea[placeholder]')]
    .filter(e => e.placeholder && e.getClientRects().length && !e.value)
    .map(e => {
      const bg = background(e);
      let fg = rgb(getComputedStyle(e, '::placeholder').color);
      if (fg.length === 4) { fg = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3])); }
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      return {e, ratio: (a + 0.05) / (b + 0.05), fg, bg};
    }).filter(p => p.ratio < 4.5);
  if (faint.length) {
    found.push({id: 'placeholder-contrast', impact: 'serious',
                help: 'A placeholder must have a contrast of at least 4.5:1', helpUrl: '',
                nodes: faint.map(p => ({target: [p.e.closest('[id]') ? '#' +
                  p.e.closest('[id]').id + ' ' + p.e.tagName.toLowerCase() : p.e.tagName],
                  impact: 'serious', html: p.e.outerHTML.slice(0, 240),
                  summary: `placeholder contrast ${p.ratio.toFixed(2)}:1 ` +
                    `(rgb(${p.fg.map(Math.round)}) on rgb(${p.bg})), expected 4.5:1`}))});
  }
  return found;
}"""


def axe_path() -> Path:
    if not AXE.is_file():
        raise RuntimeError(f"axe-core is not installed at {AXE}: `make browser` installs it")
    return AXE


def at_rest(page) -> None:
    """Wait for the page to stop fading: Gradio fades a block back in over 0.15 s when its
    event ends, and its buttons to new colours when the theme changes. Two animation frames
    first, so a fade that the last update is about to start has started."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.wait_for_function(
        "() => !document.getAnimations().some(a => a instanceof CSSTransition"
        " && a.playState === 'running')")


def run_axe(page, name: str, artifacts: Path | None = None) -> list[dict]:
    """Every axe-core violation on the page once it is at rest (``at_rest``), and our own
    two checks (above).
    axe is injected once a page; a page whose Content-Security-Policy allows no such
    script needs ``browser_page(bypass_csp=True)``. With ``artifacts``, the whole list is
    kept in ``artifacts/a11y/<name>.json``."""
    at_rest(page)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_path()))
    violations = page.evaluate(_RUN_AXE)
    if artifacts is not None:
        out = artifacts / "a11y"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(violations, indent=1))
    return violations


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in BLOCKING]


def describe(page_name: str, violations: list[dict], nodes: int = 6) -> str:
    """Rule id, impact, help, then each failing element's target and axe's summary."""
    lines = []
    for v in violations:
        lines.append(f"[{page_name}] {v['id']} ({v['impact']}, {len(v['nodes'])} element"
                     f"{'' if len(v['nodes']) == 1 else 's'}): {v['help']}")
        for n in v["nodes"][:nodes]:
            summary = " ".join(n["summary"].split())
            lines.append(f"    {' > '.join(map(str, n['target']))}: {summary[:400]}")
        if len(v["nodes"]) > nodes:
            lines.append(f"    … and {len(v['nodes']) - nodes} more")
    return "\n".join(lines)


# -- keyboard: what has the focus ----------------------------------------------------------

FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) { return null; }
  const flat = s => (s || '').replace(/\\s+/g, ' ').trim();
  let name = '';
  const by = el.getAttribute('aria-labelledby');
  if (by) {
    name = flat(by.split(/\\s+/).map(id => document.getElementById(id)?.textContent || '')
      .join(' '));
  }
  if (!name) { name = flat(el.getAttribute('aria-label')); }
  if (!name && el.labels && el.labels.length) {
    name = flat([...el.labels].map(l => l.textContent).join(' '));
  }
  if (!name && el.tagName !== 'TEXTAREA' && el.tagName !== 'INPUT') {
    name = flat(el.innerText || el.textContent);
  }
  if (!name) { name = flat(el.getAttribute('title')); }
  const bots = [...document.querySelectorAll('#chat [data-testid=bot]')];
  const after = bots.filter(
    b => b === el || b.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING).length;
  return {name, tag: el.tagName.toLowerCase(), role: el.getAttribute('role') || '',
          id: el.id || '', in_chat: !!el.closest('#chat'), bots_before: after};
}"""


def focused(page) -> dict | None:
    """The focused element: its accessible name (as a browser computes it, for what this
    page uses: aria-labelledby, aria-label, a <label>, the text, the title), its tag and
    role, whether it is in the chat, and how many bot messages come before it."""
    return page.evaluate(FOCUSED)


def tab_through(page, presses: int, until=None) -> list[dict | None]:
    """Press Tab up to ``presses`` times, recording the focus after each; stop early when
    ``until(focus)`` is true."""
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(focused(page))
        if until is not None and reached[-1] is not None and until(reached[-1]):
            break
    return reached


# -- a real server for the browser tests ---------------------------------------------------

STAFF_USER = "sam"
STAFF_PASSWORD = "a long staff password"


def share_model_files(real_dir: Path, data_dir: Path) -> None:
    """Reuse the assembled model files and saved prompt prefix of the real test session."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("models", "cache"):
        (real_dir / name).mkdir(parents=True, exist_ok=True)
        (data_dir / name).symlink_to(real_dir / name, target_is_directory=True)


@contextmanager
def real_server(real_services, root: Path):
    """``scarguide serve`` with the real model on a data folder of its own under ``root``,
    with one staff user (``scarguide staff add --password-stdin``)."""
    from tests.server import running

    data_dir = root / "data"
    share_model_files(real_services.settings.data_dir, data_dir)
    env = {"SCARGUIDE_DATA_DIR": str(data_dir), "SCARGUIDE_PROFILE": "default"}
    staff = subprocess.run(
        [str(Path(sys.executable).with_name("scarguide")), "staff", "add", STAFF_USER,
         "--password-stdin"],
        input=STAFF_PASSWORD + "\n", text=True, capture_output=True, cwd=PACKAGE_ROOT,
        env={**os.environ, **env}, check=True,
    )
    assert "created" in staff.stdout, staff.stdout + staff.stderr
    with running(env, root / "server.log", timeout=900) as srv:
        srv.db = data_dir / "scarguide.db"
        yield srv
