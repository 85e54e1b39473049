"""The quick gated eval with the real default model, as CI runs it."""

import pytest

from assistant.app import Services
from assistant.evals import harness

pytestmark = pytest.mark.real


def test_the_quick_eval_passes_the_gate(real_services, real_assistant, tmp_path):
    services = Services(real_services.settings)
    services.__dict__.update(embeddings=real_services.embeddings, index=real_services.index,
                             assistant=real_assistant)
    run = harness.Harness(
        services.settings,
        harness.InProcess(real_assistant),
        real_assistant.chunks,
        services.checker,
        harness.build_judge(services.settings, services, "same"),
        services=services,
        quick=True,
    ).run(list(harness.SUITES))
    run.gate = harness.gate(run, harness.load_baseline())
    folder = harness.write(run, tmp_path / "report")
    assert (folder / "report.html").exists() and (folder / "results.json").exists()
    assert run.gate["passed"], run.gate["failures"]
    assert len(run.gate["checked"]) >= 15
