"""The patients' page's look: its Gradio theme (contrast checked) and its style sheet
(``static/patient.css``, read once at import)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

STATIC = Path(__file__).resolve().parent / "static"

THEME = gr.themes.Default(
    primary_hue="teal",
    font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
).set(
    # white on teal-700 is 5.5:1 (Gradio's teal-500 is 2.5:1)
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    # the question box's placeholder: 4.8:1 on white, 7.8:1 on the dark theme's input
    # (Gradio's neutral-400 is 1.9:1 on white, its dark neutral-500 3.1:1)
    input_placeholder_color="*neutral_500",
    input_placeholder_color_dark="*neutral_400",
)

# the page's own rules (Gradio adds them after its own); the leading newline is the
# sheet's as it has always been served
CSS = "\n" + (STATIC / "patient.css").read_text(encoding="utf-8")
