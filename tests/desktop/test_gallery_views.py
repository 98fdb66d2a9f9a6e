"""The graph, ODE and expert templates' live views, drawn by the training panel's live view widget."""
import pyqtgraph as pg
import pytest

from desktop.panels.live_view import LiveViewPanel, class_color
from models import gallery


def _view(slug):
    """The template's live view for its freshly built (untrained) model."""
    from models.training import load_project_data
    from models.views import view_function

    project = gallery.open_template(slug)
    make = view_function(project.recipe, load_project_data(project))
    view = make(project.build())
    assert make.error is None
    return view


@pytest.mark.parametrize("slug, kinds", [
    ("gat", ["graph", "graph", "heatmap"]),
    ("moe", ["bars", "heatmap"]),
    ("neural-ode", ["lines", "scatter"]),
])
def test_template_views_draw(slug, kinds, qtbot):
    panel = LiveViewPanel()
    qtbot.addWidget(panel)
    panel.resize(1200, 400)
    panel.show()
    view = _view(slug)
    panel.set_view(view, epoch=1)
    assert [p["kind"] for p in view["panels"]] == kinds
    assert [type(r).__name__.strip("_").lower() for r in panel._renderers] == kinds
    assert panel.title.text().endswith("epoch 1")


def test_ode_paths_take_their_moons_colour_and_two_legend_entries(qtbot):
    panel = LiveViewPanel()
    qtbot.addWidget(panel)
    panel.show()
    view = _view("neural-ode")
    panel.set_view(view)
    lines = panel._renderers[0]
    items = [i for i in lines._items if isinstance(i, pg.PlotDataItem)]
    series = view["panels"][0]["series"]
    assert len(items) == len(series) == 60
    for item, s in zip(items, series):
        assert item.opts["pen"].color().name() == class_color(s["class"])
    assert [label.text for _, label in lines.plot.legend.items] == ["moon 0", "moon 1"]
