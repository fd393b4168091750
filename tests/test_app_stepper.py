"""The samples of every past eval: the stepping rule (pure) and the keys in the console (Pilot),
including samples files that are missing or unreadable."""
from __future__ import annotations

import numpy as np
import pytest

from labconsole.app import make_app
from labconsole.app.messages import RunEvent
from labconsole.app.samples import load_samples
from labconsole.app.stepper import move, sample_steps, samples_title, selected_index
from labconsole.app.widgets.bumps import BumpGrid
from labconsole.app.widgets.manifold import ManifoldView
from labconsole.app.widgets.runs import RunList
from test_app_helpers import make_eval, screen_text, wait_for, write_run, write_samples

STEPS = (0, 100, 200, 300)


def test_following_shows_the_latest_and_stepping_back_pins_a_step():
    assert selected_index(STEPS, None) == 3 and selected_index((), None) is None
    assert move(STEPS, None, "previous") == 200
    assert move(STEPS, 200, "previous") == 100
    assert move(STEPS, 0, "previous") == 0  # stays on the first
    assert move(STEPS, None, "first") == 0
    assert move(STEPS, 100, "next") == 200
    assert move(STEPS, 200, "next") is None  # reached the latest: follows again
    assert move(STEPS, 100, "latest") is None
    assert move((), None, "previous") is None
    with pytest.raises(ValueError, match="unknown move 'back'; expected one of: first, previous, next, latest"):
        move(STEPS, None, "back")


def test_a_pinned_step_dropped_by_a_resume_falls_back_to_the_eval_before_it():
    assert selected_index((0, 100, 300), 200) == 1
    assert selected_index((100, 300), 50) == 0


def test_only_evals_with_a_samples_file_count():
    evals = [make_eval(0, 0.1, "A", samples_path="samples/step-0000000.npz"), make_eval(100, 0.2, "A")]
    assert sample_steps(evals) == (0,)


def test_the_title_names_the_step_its_place_and_the_keys():
    assert samples_title(STEPS, None) == "samples @ step 300 · 4/4 · live · [ back"
    assert samples_title(STEPS, 100) == "samples @ step 100 · 2/4 · [ ] step · } live"
    assert samples_title((6400,), None) == "samples @ step 6,400 · 1/1 · live"
    assert samples_title((), None) == "samples"


def shown(app) -> tuple[int | None, str, str]:
    """(step of the samples on screen, bumps title, manifold title)."""
    samples = app.monitor.samples
    return (samples.step if samples else None, str(app.query_one(BumpGrid).border_title),
            str(app.query_one(ManifoldView).border_title))


async def attach_first_run(app, pilot) -> None:
    await wait_for(pilot, lambda: app.query_one(RunList).option_count == 1, what="the run listed")
    await pilot.press("a")
    await wait_for(pilot, lambda: app.monitor.view.status == "completed", what="the replay")


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_keys_step_through_past_evals_and_the_latest_follows_again(tmp_path, size):
    runs, presets = tmp_path / "runs", tmp_path / "presets"
    presets.mkdir()
    run_dir = write_run(runs, evals=5)  # evals at 0, 100, ..., 400, each with its samples file
    app = make_app(runs, presets)
    monitor = app.monitor
    async with app.run_test(size=size) as pilot:
        await attach_first_run(app, pilot)
        if size[0] < 120:
            await pilot.press("2")  # one panel at a time: the bumps
        await wait_for(pilot, lambda: shown(app)[0] == 400, what="the latest samples")
        assert "samples @ step 400 · 5/5 · live" in shown(app)[1]
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: shown(app)[0] == 200, what="two evals back")
        step, bumps_title, manifold_title = shown(app)
        assert bumps_title.startswith("samples @ step 200 · 3/5 · [ ] step")
        assert "@ step 200" in manifold_title
        assert "samples @ step 200 · 3/5" in screen_text(app)
        expected = load_samples(run_dir / "samples" / "step-0000200.npz")
        assert np.array_equal(monitor.samples.labels, expected.labels)  # that eval's bumps, not the latest
        await pilot.press("left_curly_bracket")
        await wait_for(pilot, lambda: shown(app)[0] == 0, what="the first eval")
        assert "1/5" in shown(app)[1]
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: shown(app)[0] == 100, what="one eval on")

        # A new eval while stepped back: the step shown stays put; } shows it and follows again.
        rel = write_samples(run_dir, 500)
        monitor.post_message(RunEvent(monitor.generation, make_eval(500, 0.9, "C", samples_path=rel)))
        await wait_for(pilot, lambda: "2/6" in shown(app)[1], what="the new eval counted")
        assert shown(app)[0] == 100 and monitor.pinned == 100
        await pilot.press("right_curly_bracket")
        await wait_for(pilot, lambda: shown(app)[0] == 500, what="back to the latest")
        assert monitor.pinned is None and "6/6 · live" in shown(app)[1]


async def test_a_missing_or_unreadable_samples_file_is_one_line_in_the_panels(tmp_path):
    runs, presets = tmp_path / "runs", tmp_path / "presets"
    presets.mkdir()
    run_dir = write_run(runs, evals=4)
    (run_dir / "samples" / "step-0000300.npz").unlink()  # the latest eval's
    (run_dir / "samples" / "step-0000200.npz").write_bytes(b"PK\x03\x04 truncated")
    app = make_app(runs, presets)
    async with app.run_test(size=(160, 48)) as pilot:
        await attach_first_run(app, pilot)
        bumps, manifold = app.query_one(BumpGrid), app.query_one(ManifoldView)
        missing = "step 300: step-0000300.npz is missing"
        await wait_for(pilot, lambda: bumps.note == missing, what="the missing file said")
        assert manifold.note == missing and app.monitor.samples is None
        await wait_for(pilot, lambda: missing in screen_text(app), what="the line on screen")
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: bumps.note.startswith("step 200: cannot read step-0000200.npz: "),
                       what="the unreadable file said")
        assert "\n" not in bumps.note
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: shown(app)[0] == 100, what="a readable eval")
        assert bumps.note == "" and bumps.shown > 0
        assert not app.query_one("#problem").has_class("-shown")  # no app-level error: the panel says it
