"""The ask-the-cheatsheet dialog: question in, passages and answer out, off the UI thread."""
import pytest


@pytest.fixture
def rag_doc(make_doc):
    from models import gallery

    return make_doc(gallery.open_template("rag"))


def _train_briefly(project):
    from models.training import train

    result = train(project, epochs=2)
    project.weights[project.main_name] = result.model.get_weights()


def test_an_untrained_project_is_told_to_train_first(qtbot, rag_doc):
    from desktop.panels.ask import AskDialog, is_rag_project

    assert is_rag_project(rag_doc.project)
    dialog = AskDialog(rag_doc)
    qtbot.addWidget(dialog)
    dialog.question.setText("What is a flatten layer?")
    assert dialog.ask() is False
    assert "not trained yet" in dialog.status.text()
    dialog.question.setText("  ")
    assert dialog.ask() is False and "type a question" in dialog.status.text()


def test_asking_lists_the_passages_used_and_an_answer(qtbot, rag_doc):
    from desktop.panels.ask import AskDialog

    _train_briefly(rag_doc.project)
    dialog = AskDialog(rag_doc)
    qtbot.addWidget(dialog)
    dialog.question.setText("What does the stride of a convolution control?")
    with qtbot.waitSignal(dialog.sig_answered, timeout=60000) as blocker:
        assert dialog.ask() is True
        assert not dialog.ask_btn.isEnabled()  # the work runs in the background
    result = blocker.args[0]
    assert dialog.ask_btn.isEnabled() and dialog.table.rowCount() == 3
    assert dialog.table.item(0, 1).text().startswith(result["passages"][0]["section"])
    assert result["answer"] in dialog.answer.text()
    first = dialog._retriever
    dialog.question.setText("zzz qqq")
    with qtbot.waitSignal(dialog.sig_answered, timeout=60000):
        dialog.ask()
    qtbot.wait(50)  # the thread's relay object is deleted later: let that happen before the dialog
    assert dialog._retriever is first  # built once per set of weights
    assert "none of the question's words" in dialog.status.text() and dialog.table.rowCount() == 0


def test_the_train_menu_offers_asking_only_for_rag_projects(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERFORGE_RECOVERY_DIR", str(tmp_path))
    from desktop.main_window import MainWindow

    w = MainWindow(offer_recovery=False)
    qtbot.addWidget(w)
    w._update_ask_action()
    assert not w.ask_action.isVisible()
    w.open_path("gallery:rag", ask=False)
    w._update_ask_action()
    assert w.ask_action.isVisible()
    w.ask_action.trigger()
    assert w._ask_dialog.isVisible() and w._ask_dialog.doc is w.doc
    w._ask_dialog.close()
    w.doc.undo_stack.setClean()
