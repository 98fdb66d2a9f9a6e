"""Small things the gallery's long measurements and live views need from the training panel."""


def test_after_the_last_epoch_the_bar_says_what_the_run_still_does(qtbot):
    from desktop.panels.training import TrainingPanel
    from models.runner import RunState

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    try:
        state = RunState()
        panel.epochs_total, panel.epochs_done = 3, 3
        state.progress(1.0, "fusion_gain: training the image-only model, epoch 2/3, batch 5/9")
        panel._show_progress(state)
        assert "image-only model, epoch 2/3" in panel.progress.format()
        panel.epochs_done = 1
        state.progress(0.5, "epoch 2/3, batch 1/9")  # while training, the bar counts epochs itself
        panel._show_progress(state)
        assert "epoch 2/3" in panel.progress.format() and "batch" not in panel.progress.format()
    finally:
        panel.shutdown()


def test_live_view_axes_show_values_as_they_are(qtbot):
    from desktop.panels.live_view import LiveViewPanel
    from models import views

    w = LiveViewPanel()
    qtbot.addWidget(w)
    w.set_view(views.view("Lengths", views.bars_panel("lengths", ["a", "b"], [0.002, 0.004])))
    axis = w._renderers[0].plot.getAxis("left")
    assert not axis.autoSIPrefix  # 0.004 stays 0.004, not 4 with a "x0.001" label
