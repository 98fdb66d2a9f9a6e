"""Qt test set-up: offscreen rendering, a fresh Document per test, one worker thread."""
import os

# Before any QApplication exists (pytest-qt creates it lazily).
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The app's own files (training runs of unsaved projects, recovery copies) go to a
# folder of the test session, never into the user's app-data folder.
import tempfile  # noqa: E402

os.environ["LAYERFORGE_DATA_DIR"] = tempfile.mkdtemp(prefix="layerforge-tests-")

import pytest  # noqa: E402

# What the offscreen platform cannot do (raise a tooltip window, size hints of
# native windows) is not a fault of the program under test.
OFFSCREEN_LIMITS = r"This plugin does not support"


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_LIMITS))


def _close_document(doc) -> None:
    """Detach a Document from the shared validation thread so it goes quiet."""
    from desktop.document import engine

    doc._timer.stop()
    try:
        engine().worker.sig_done.disconnect(doc._on_validated)
    except (RuntimeError, TypeError):
        pass
    doc.graph.unsubscribe(doc._on_graph_event)
    doc.undo_stack.clear()


@pytest.fixture
def make_doc(qtbot):
    """A factory of Documents (``make_doc(project=None)``), all closed at teardown."""
    from desktop.document import Document
    from models.project import new_project

    docs = []

    def make(project=None):
        doc = Document(project or new_project())
        docs.append(doc)
        return doc

    yield make
    for doc in docs:
        _close_document(doc)


@pytest.fixture
def doc(make_doc):
    """An empty project's Document."""
    return make_doc()


@pytest.fixture(autouse=True)
def _collect_on_the_ui_thread(qapp):
    """As in the app: Python's garbage collector runs on the UI thread only."""
    from desktop import collector

    collector.install(qapp)
    yield
    collector.uninstall()


@pytest.fixture(scope="session", autouse=True)
def _stop_validation_thread():
    yield
    from desktop.document import _Engine

    # The engine may still be importing TensorFlow when the last test ends; let it finish.
    _Engine.shutdown(timeout_ms=120_000)
