"""Honest labels (issue 21): where the demo model is the base, the page says what it is."""

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from generation.models import BaseModel
from generation.services import base_model_default

NOTE = "generation/_demo_model_note.html"


@pytest.mark.django_db
def test_the_demo_base_model_is_labelled_and_another_base_is_not():
    demo = base_model_default()
    assert "procedural images only" in demo.description
    assert "SD 1.5 on a GPU" in demo.description
    with translation.override("en"):  # whatever language an earlier test left active
        html = render_to_string(NOTE, {"model": demo})
    assert 'role="note"' in html and "cannot learn real paintings" in html
    other = BaseModel(name="Stable Diffusion 1.5", path="/models/sd15", kind=demo.kind)
    assert render_to_string(NOTE, {"model": other}).strip() == ""


def test_run_and_request_pages_include_the_label():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "generation" / "templates" / "generation"
    for page, var in (("run_detail.html", "run"), ("request_detail.html", "req")):
        text = (root / page).read_text(encoding="utf-8")
        assert f'{{% include "{NOTE}" with model={var}.base_model %}}' in text, page
