"""Data sources: built-ins, CSV, NPZ, image folders, keras.datasets (offline), splits, previews."""
import csv
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from models.data import DataError, Dataset, dataset_from_arrays, list_builtin, load_dataset

ROOT = Path(__file__).resolve().parents[2]


def _all_x(ds):
    return np.concatenate([ds.x_train, ds.x_val, ds.x_test])


def _all_y(ds):
    return np.concatenate([ds.y_train, ds.y_val, ds.y_test])


# --------------------------------------------------------------------------- built-ins

EXPECTED = {
    # name: (task, input shape, classes, total samples)
    "digits": ("classification", (8, 8, 1), 10, 1797),
    "digits-rows": ("classification", (8, 8), 10, 1797),
    "digits-flat": ("classification", (64,), 10, 1797),
    "iris": ("classification", (4,), 3, 150),
    "wine": ("classification", (13,), 3, 178),
    "breast-cancer": ("binary", (30,), 2, 569),
    "moons": ("binary", (2,), 2, 1000),
    "circles": ("binary", (2,), 2, 1000),
    "spirals": ("classification", (2,), 3, 1000),
    "sine": ("forecast", (32, 1), None, 1000),
}


def test_list_builtin_names_every_builtin_with_its_shape():
    listed = {b["name"]: b for b in list_builtin()}
    # The gallery's generated data (models.datasets) is listed too and tested beside its templates.
    assert set(EXPECTED) <= set(listed)
    for name, (task, shape, classes, _) in EXPECTED.items():
        entry = listed[name]
        assert (entry["task"], entry["shape"], entry["classes"]) == (task, shape, classes)
        assert entry["description"] and "\n" not in entry["description"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builtin_shapes_tasks_and_classes(name):
    task, shape, classes, total = EXPECTED[name]
    ds = load_dataset(f"builtin:{name}")
    assert ds.task == task
    assert ds.input_shape == shape
    assert ds.x_train.shape[1:] == shape and ds.x_test.shape[1:] == shape
    assert ds.num_classes == classes
    assert ds.n_train + ds.n_val + ds.n_test == total
    assert ds.n_test == round(total * 0.2) and ds.n_val == round(total * 0.1)
    assert ds.x_train.dtype == np.float32
    assert np.isfinite(_all_x(ds)).all()
    if classes:
        assert ds.y_train.dtype == np.int32 and ds.y_train.ndim == 1
        assert set(np.unique(_all_y(ds))) == set(range(classes))
        assert len(ds.class_names) == classes
        # every class reaches the training split
        assert (ds.class_counts("train") > 0).all()


@pytest.mark.parametrize("name", ["digits", "digits-rows", "digits-flat"])
def test_digit_pixels_are_scaled_to_unit_range(name):
    x = _all_x(load_dataset(f"builtin:{name}"))
    assert x.min() == 0.0 and x.max() == 1.0


def test_digit_layouts_hold_the_same_pixels():
    image = load_dataset("builtin:digits", seed=3)
    rows = load_dataset("builtin:digits-rows", seed=3)
    flat = load_dataset("builtin:digits-flat", seed=3)
    np.testing.assert_array_equal(image.x_train[..., 0], rows.x_train)
    np.testing.assert_array_equal(image.x_train.reshape(-1, 64), flat.x_train)
    np.testing.assert_array_equal(image.y_train, flat.y_train)


@pytest.mark.parametrize("name", ["iris", "wine", "breast-cancer"])
def test_tabular_builtins_are_standardized_with_train_statistics(name):
    from sklearn import datasets as skd

    ds = load_dataset(f"builtin:{name}")
    loader = {"iris": skd.load_iris, "wine": skd.load_wine,
              "breast-cancer": skd.load_breast_cancer}[name]
    assert ds.feature_names == list(loader().feature_names)
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train.std(axis=0), 1.0, atol=1e-4)
    # Test statistics did not take part: the test split is not exactly centred.
    assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-3
    assert any("standardized" in n for n in ds.notes)


def test_two_class_generators_are_balanced_and_binary():
    for name in ("moons", "circles"):
        ds = load_dataset(f"builtin:{name}")
        assert np.bincount(_all_y(ds)).tolist() == [500, 500]
        assert ds.output_spec() == {"units": 1, "activation": "sigmoid",
                                    "loss": "binary_crossentropy", "metrics": ["accuracy"]}


def test_spirals_have_three_or_two_arms():
    three = load_dataset("builtin:spirals")
    assert np.bincount(_all_y(three)).tolist() == [334, 333, 333]
    assert np.abs(_all_x(three)).max() < 1.2
    two = load_dataset({"source": "builtin", "name": "spirals", "arms": 2})
    assert two.task == "binary" and two.num_classes == 2
    with pytest.raises(DataError, match="2 or 3 arms"):
        load_dataset({"source": "builtin", "name": "spirals", "arms": 5})


def test_sine_is_a_forecast_split_in_time_order():
    ds = load_dataset("builtin:sine")
    assert ds.y_train.shape[1:] == (1,) and ds.y_train.dtype == np.float32
    assert ds.modality == "series"
    # Window i is series[i:i+32] and predicts series[i+32]: consecutive windows shift by one,
    # and the validation split starts right where training ends.
    np.testing.assert_array_equal(ds.x_train[1, :-1], ds.x_train[0, 1:])
    assert ds.x_train[1, -1, 0] == ds.y_train[0, 0]
    assert ds.x_val[0, -1, 0] == ds.y_train[-1, 0]
    assert ds.x_test[0, -1, 0] == ds.y_val[-1, 0]
    assert ds.output_spec() == {"units": 1, "activation": "linear", "loss": "mse",
                                "metrics": ["mae"]}


def test_unknown_builtin_lists_the_builtins():
    with pytest.raises(DataError, match="no built-in dataset named 'mnist'.*digits.*sine"):
        load_dataset("builtin:mnist")


# --------------------------------------------------------------------------- splits


def test_splits_are_deterministic_and_disjoint():
    a = load_dataset("builtin:moons", seed=7)
    b = load_dataset({"source": "builtin", "name": "moons"}, seed=7)
    c = load_dataset("builtin:moons", seed=8)
    for part in ("x_train", "y_train", "x_val", "x_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert not np.array_equal(a.x_test, c.x_test)
    rows = [{tuple(r) for r in part} for part in (a.x_train, a.x_val, a.x_test)]
    assert sum(len(r) for r in rows) == 1000
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])


def test_classification_splits_are_stratified():
    ds = load_dataset("builtin:digits", seed=1)
    total = np.bincount(_all_y(ds), minlength=10)
    for split, n in (("test", ds.n_test), ("val", ds.n_val)):
        counts = ds.class_counts(split)
        expected = total * n / total.sum()
        assert np.abs(counts - expected).max() <= 1.0, (split, counts, expected)
    assert any("stratified" in note for note in ds.notes)


def test_a_tiny_class_falls_back_to_a_random_split_and_says_so():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = np.array([0] * 10 + [1] * 9 + [2])
    ds = dataset_from_arrays(x, y, task="classification", seed=0)
    assert ds.n_train + ds.n_val + ds.n_test == 20
    assert any("not stratified" in note for note in ds.notes)


def test_limit_takes_a_stratified_subsample():
    ds = load_dataset("builtin:digits", limit=200)
    assert ds.n_train + ds.n_val + ds.n_test == 200
    assert np.bincount(_all_y(ds), minlength=10).min() >= 19
    with pytest.raises(DataError, match="limit"):
        load_dataset("builtin:digits", limit=3)


def test_bad_fractions_are_rejected():
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset("builtin:iris", val_fraction=-0.1)
    with pytest.raises(DataError, match="leave some data"):
        load_dataset("builtin:iris", val_fraction=0.5, test_fraction=0.5)


def test_multi_input_arrays_split_together():
    rng = np.random.default_rng(0)
    a = np.arange(60, dtype=np.float32).reshape(30, 2)
    b = rng.random((30, 5, 3)).astype(np.float32)
    y = np.array([0, 1] * 15)
    ds = dataset_from_arrays({"a": a, "b": b}, y, seed=2)
    assert ds.input_shape == {"a": (2,), "b": (5, 3)}
    assert ds.n_train == len(ds.y_train) == len(ds.x_train["b"])
    # Row i of each input stays paired with the same target.
    idx = (ds.x_train["a"][:, 0] / 2).astype(int)
    np.testing.assert_array_equal(ds.x_train["b"], b[idx])
    np.testing.assert_array_equal(ds.y_train, y[idx])
    assert ds.preview(2)["kind"] == "table"


# --------------------------------------------------------------------------- CSV


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _flowers(n=60, seed=0):
    rng = np.random.default_rng(seed)
    species = ["setosa", "versicolor", "virginica"]
    rows = []
    for i in range(n):
        k = [1, 2, 0][i % 3]  # first appearance order differs from sorted order
        rows.append([f"{rng.normal(5 + k, 0.3):.2f}", f"{rng.normal(3 - 0.2 * k, 0.3):.2f}",
                     ["red", "blue", "white"][i % 2 + (i % 5 == 0)], species[k]])
    return ["length", "width", "color", "species"], rows


def test_csv_with_a_text_label_loads_encoded_and_standardized(tmp_path):
    header, rows = _flowers()
    ds = load_dataset(str(_write_csv(tmp_path / "flowers.csv", header, rows)))
    assert ds.task == "classification" and ds.num_classes == 3
    assert ds.class_names == ["setosa", "versicolor", "virginica"]  # sorted, not first-seen
    assert ds.target_name == "species" and ds.name == "flowers"
    assert ds.feature_names == ["length", "width", "color=blue", "color=red", "color=white"]
    # Labels follow the sorted class names.
    labels = np.array([ds.class_names.index(r[3]) for r in rows])
    assert sorted(_all_y(ds).tolist()) == sorted(labels.tolist())
    # Numeric columns: train mean 0, std 1; one-hot columns stay 0/1.
    np.testing.assert_allclose(ds.x_train[:, :2].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.x_train[:, :2].std(axis=0), 1.0, atol=1e-4)
    assert set(np.unique(ds.x_train[:, 2:])) == {0.0, 1.0}
    np.testing.assert_array_equal(ds.x_train[:, 2:].sum(axis=1), 1.0)
    notes = " | ".join(ds.notes)
    assert "sorted order" in notes and "setosa=0" in notes
    assert "standardized 2 numeric columns" in notes and "color (3 values)" in notes


def test_csv_length_feature_predicts_the_label(tmp_path):
    """The encoding keeps each row's features with its own label."""
    header, rows = _flowers(90)
    ds = load_dataset({"source": "csv", "path": _write_csv(tmp_path / "f.csv", header, rows)})
    # length grows with the species index by construction; the standardized means must too.
    means = [ds.x_train[ds.y_train == k, 0].mean() for k in range(3)]
    assert means[0] < means[1] < means[2]


def test_csv_junk_cell_names_column_and_line(tmp_path):
    header = ["age", "height", "label"]
    rows = [[str(20 + i), f"{1.5 + i / 100:.2f}", "ab"[i % 2]] for i in range(30)]
    rows[15][0] = "abc"  # data row 16 is file line 17 (the header is line 1)
    path = _write_csv(tmp_path / "people.csv", header, rows)
    with pytest.raises(DataError) as info:
        load_dataset(path_spec := {"source": "csv", "path": str(path)})
    assert "column 'age', line 17: 'abc' is not a number" in str(info.value)
    assert path_spec["path"]  # the spec is not consumed


def test_csv_line_numbers_count_newlines_inside_quoted_cells(tmp_path):
    header = ["comment", "score", "label"]
    rows = [[f"row {i}", str(i), "ab"[i % 2]] for i in range(30)]
    rows[2][0] = "two\nlines"
    rows[4][0] = "three\nphysical\nlines"
    rows[20][0] = "again\nhere"   # a multi-line cell in the same record, before the junk
    rows[20][1] = "oops"
    path = _write_csv(tmp_path / "notes.csv", header, rows)
    text_lines = path.read_text(encoding="utf-8").splitlines()
    true_line = next(i for i, line in enumerate(text_lines, 1) if "oops" in line)
    assert true_line == 1 + 21 + 1 + 2 + 1  # header + rows + extra lines of rows 2, 4 and 20
    with pytest.raises(DataError, match=rf"column 'score', line {true_line}: 'oops'"):
        load_dataset(str(path), target="label")


def test_csv_empty_cell_errors_or_is_dropped_on_request(tmp_path):
    header = ["a", "b", "y"]
    rows = [[str(i), str(i * 2), "xy"[i % 2]] for i in range(30)]
    rows[9][1] = ""
    rows[12][0] = "NA"
    path = _write_csv(tmp_path / "holes.csv", header, rows)
    with pytest.raises(DataError, match=r"column 'a', line 14: the cell holds 'NA'"):
        load_dataset(str(path))
    rows[12][0] = "12"
    path = _write_csv(tmp_path / "holes.csv", header, rows)
    with pytest.raises(DataError, match=r"column 'b', line 11: the cell is empty.*missing"):
        load_dataset(str(path))
    ds = load_dataset({"source": "csv", "path": str(path), "missing": "drop"})
    assert ds.n_train + ds.n_val + ds.n_test == 29
    assert any("dropped 1 row with missing cells" in n for n in ds.notes)


def test_csv_rows_with_an_empty_target_are_dropped_with_a_note(tmp_path):
    rows = [[str(i), f"{i * 0.5:.1f}"] for i in range(40)]
    rows[3][1] = rows[7][1] = ""
    ds = load_dataset(str(_write_csv(tmp_path / "r.csv", ["x", "y"], rows)))
    assert ds.n_train + ds.n_val + ds.n_test == 38
    assert "dropped 2 rows with an empty target" in ds.notes


def test_csv_missing_target_lists_the_columns(tmp_path):
    header, rows = _flowers()
    path = _write_csv(tmp_path / "flowers.csv", header, rows)
    with pytest.raises(DataError) as info:
        load_dataset(str(path), target="kind")
    message = str(info.value)
    assert "no column 'kind'" in message
    for column in header:
        assert f"'{column}'" in message


def test_csv_target_kind_rule(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    ints = _write_csv(tmp_path / "ints.csv", ["x", "grade"],
                      [[f"{v:.3f}", str([3, 5, 7][i % 3])] for i, v in enumerate(x)])
    ds = load_dataset(str(ints))
    assert ds.task == "classification" and ds.class_names == ["3", "5", "7"]
    assert set(np.unique(_all_y(ds))) == {0, 1, 2}

    floats = _write_csv(tmp_path / "floats.csv", ["x", "price"],
                        [[f"{v:.3f}", f"{10 + 3 * v:.4f}"] for v in x])
    ds = load_dataset(str(floats))
    assert ds.task == "regression" and ds.class_names is None
    assert ds.y_train.shape == (ds.n_train, 1) and ds.y_train.dtype == np.float32
    assert ds.output_spec()["loss"] == "mse"

    many = _write_csv(tmp_path / "many.csv", ["x", "count"],
                      [[f"{v:.3f}", str(i)] for i, v in enumerate(x)])
    assert load_dataset(str(many)).task == "regression"  # 60 distinct whole numbers

    forced = load_dataset({"source": "csv", "path": str(ints), "task": "regression"})
    assert forced.task == "regression"


def test_csv_id_columns_are_dropped_not_one_hot_encoded(tmp_path):
    rows = [[f"user{i}", f"{i * 0.1:.1f}", ["a", "b", "c"][i % 3], "xy"[i % 2]] for i in range(60)]
    ds = load_dataset(str(_write_csv(tmp_path / "ids.csv", ["user", "v", "group", "y"], rows)))
    assert ds.feature_names == ["v", "group=a", "group=b", "group=c"]
    assert any("'user' (" in note and "dropped text columns" in note for note in ds.notes)


def test_csv_needs_a_header_and_enough_rows(tmp_path):
    numbers = _write_csv(tmp_path / "nohead.csv", ["1", "2", "0"], [["3", "4", "1"]] * 20)
    with pytest.raises(DataError, match="header row"):
        load_dataset(str(numbers))
    short = _write_csv(tmp_path / "short.csv", ["a", "y"], [[str(i), str(i % 2)] for i in range(6)])
    with pytest.raises(DataError, match="only 6 usable data rows"):
        load_dataset(str(short))


def test_csv_ragged_row_names_its_line(tmp_path):
    path = tmp_path / "ragged.csv"
    lines = ["a,b,y"] + [f"{i},{i},{i % 2}" for i in range(20)]
    lines[8] = "1,2"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 9: 2 cells, but the header"):
        load_dataset(str(path))


def test_csv_semicolons_and_splits_ignore_row_order(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n" + "".join(f"{i};{i % 7};{i % 2}\n" for i in range(50)),
                    encoding="utf-8")
    ds = load_dataset(str(path))
    assert ds.feature_names == ["a", "b"] and ds.task == "binary"
    assert "semicolon" in ds.notes[0]


# --------------------------------------------------------------------------- NPZ


def test_npz_with_x_and_y(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.random((50, 6)), y=rng.integers(0, 3, 50))
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.input_shape == (6,) and ds.task == "classification" and ds.num_classes == 3
    assert ds.x_train.dtype == np.float32


def test_npz_with_its_own_test_split_keeps_it(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x_train=rng.random((40, 3)), y_train=rng.random(40),
             x_test=rng.random((12, 3)), y_test=rng.random(12))
    ds = load_dataset(str(tmp_path / "s.npz"))
    assert ds.n_test == 12 and ds.n_train + ds.n_val == 40
    assert ds.task == "regression" and ds.y_test.shape == (12, 1)


def test_npz_wrong_keys_name_missing_and_found(tmp_path):
    np.savez(tmp_path / "bad.npz", inputs=np.zeros((20, 2)), y=np.zeros(20))
    with pytest.raises(DataError) as info:
        load_dataset({"source": "npz", "path": str(tmp_path / "bad.npz")})
    message = str(info.value)
    assert "missing 'x'" in message and "'inputs', 'y'" in message
    np.savez(tmp_path / "half.npz", x_train=np.zeros((20, 2)))
    with pytest.raises(DataError, match="missing 'y_train'.*'x_train'"):
        load_dataset(str(tmp_path / "half.npz"))


def test_npz_mismatched_lengths(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((20, 2)), y=np.zeros(19))
    with pytest.raises(DataError, match="x has 20 samples but y has 19"):
        load_dataset(str(tmp_path / "m.npz"))


# --------------------------------------------------------------------------- image folders


def _image_folder(root: Path, corrupt=True):
    from PIL import Image

    for k, (name, color) in enumerate((("cats", (200, 30, 30)), ("dogs", (30, 30, 200)))):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(8):
            img = Image.new("RGB", (20, 16), tuple(min(255, c + 3 * i) for c in color))
            img.save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    if corrupt:
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG this is not really an image")
    (root / "cats" / "readme.txt").write_text("not an image")
    return root


def test_image_folder_loads_and_notes_the_corrupt_file(tmp_path):
    root = _image_folder(tmp_path / "pets")
    ds = load_dataset(str(root))
    assert ds.class_names == ["cats", "dogs"] and ds.task == "binary"
    assert ds.n_train + ds.n_val + ds.n_test == 16
    assert ds.input_shape == (16, 20, 3)  # (height, width, channels) of the first image
    x = _all_x(ds)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    # The red channel tells the classes apart.
    red = x[..., 0].mean(axis=(1, 2))
    y = _all_y(ds)
    assert red[y == 0].min() > 0.7 > 0.3 > red[y == 1].max()
    notes = " | ".join(ds.notes)
    assert "dogs/broken.png" in notes and "skipped 1 unreadable image" in notes
    assert "ignored 1 file not ending in .png" in notes


def test_image_folder_size_and_grayscale(tmp_path):
    root = _image_folder(tmp_path / "pets", corrupt=False)
    ds = load_dataset({"source": "images", "path": str(root), "image_size": [10, 12],
                       "color_mode": "grayscale"})
    assert ds.input_shape == (10, 12, 1)
    preview = ds.preview(4)
    assert preview["kind"] == "images" and preview["images"].shape == (4, 10, 12, 1)
    assert set(preview["labels"]) <= {"cats", "dogs"}


def test_large_images_are_capped_at_64_pixels(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "big" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (200, 100), (i * 40, 0, 0)).save(tmp_path / "big" / name / f"{i}.png")
    ds = load_dataset(str(tmp_path / "big"))
    assert ds.input_shape == (32, 64, 3)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_dataset({"source": "images", "path": str(tmp_path / "empty")})
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match="one subfolder per"):
        load_dataset(str(flat))


# --------------------------------------------------------------------------- keras.datasets


def test_keras_dataset_offline_gives_a_clear_message(tmp_path, monkeypatch):
    from models import backend

    backend.keras()
    import keras.src.backend.config as keras_config
    import keras.src.utils.file_utils as file_utils

    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    # An empty cache and no network: the real load_data runs until get_file tries to download.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    with pytest.raises(DataError) as info:
        load_dataset({"source": "keras", "name": "mnist"})
    assert calls and "mnist" in calls[0]
    assert str(info.value) == (
        "keras.datasets 'mnist' needs an internet connection the first time (it downloads about "
        "11 MB); LayerForge found none. Use a built-in dataset such as builtin:digits, or your "
        "own data.")
    assert info.value.__cause__ is None


def test_keras_dataset_is_prepared_like_the_others(monkeypatch):
    """A cached dataset: images get a channel axis and [0, 1]; the own test split is kept."""
    from models import data

    rng = np.random.default_rng(0)

    def fake(name, **kwargs):
        assert name == "fashion_mnist"
        return ((rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), np.arange(60) % 10),
                (rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), np.arange(20) % 10))

    monkeypatch.setattr(data, "_keras_load_data", fake)
    ds = load_dataset("keras:fashion_mnist")
    assert ds.input_shape == (28, 28, 1) and ds.n_test == 20 and ds.n_train + ds.n_val == 60
    assert ds.x_train.max() <= 1.0 and ds.class_names[0] == "T-shirt/top"
    with pytest.raises(DataError, match="choose one of: mnist"):
        load_dataset({"source": "keras", "name": "nope"})


# --------------------------------------------------------------------------- dispatch, preview, no TF


def test_plain_path_dispatch_and_unknown_files(tmp_path):
    (tmp_path / "sheet.xlsx").write_bytes(b"")
    with pytest.raises(DataError, match="cannot read '.xlsx'"):
        load_dataset(str(tmp_path / "sheet.xlsx"))
    with pytest.raises(DataError, match="no file or folder"):
        load_dataset(str(tmp_path / "nothing.csv"))
    with pytest.raises(DataError, match="unknown data source"):
        load_dataset({"source": "sql"})


def test_preview_kinds():
    images = load_dataset("builtin:digits").preview(5)
    assert images["kind"] == "images" and images["images"].shape == (5, 8, 8, 1)
    assert all(label in [str(i) for i in range(10)] for label in images["labels"])
    table = load_dataset("builtin:iris").preview(3)
    assert table["kind"] == "table"
    assert table["columns"][:4] == ["sepal length (cm)", "sepal width (cm)",
                                    "petal length (cm)", "petal width (cm)"]
    assert len(table["rows"]) == 3 and all(len(r) == 5 for r in table["rows"])
    assert table["rows"][0][-1] in ("setosa", "versicolor", "virginica")
    series = load_dataset("builtin:sine").preview(2)
    assert series["kind"] == "table" and series["columns"][-2:] == ["t-1", "next value"]
    assert isinstance(series["rows"][0][-1], float)
    wide = load_dataset("builtin:digits-flat").preview(2)
    assert len(wide["columns"]) == 17 and wide["columns"][-2] == "... 49 more"


def test_describe_says_what_was_done():
    ds = load_dataset("builtin:iris", seed=4)
    text = ds.describe()
    assert text.startswith("iris: classification, 3 classes")
    assert f"{ds.n_train} train, {ds.n_val} validation, {ds.n_test} test" in text
    assert "setosa (" in text and "standardized" in text and "seed 4" in text


def test_dataset_rejects_an_unknown_task():
    z = np.zeros((2, 1))
    with pytest.raises(DataError, match="unknown task"):
        Dataset(z, z, z, z, z, z, task="clustering")


NO_TF = r"""
import sys, csv
from models.data import load_dataset
load_dataset("builtin:digits")
with open(sys.argv[1], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["a", "b", "label"])
    w.writerows([[i, i % 3, "xy"[i % 2]] for i in range(30)])
load_dataset(sys.argv[1])
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
"""


def test_builtins_and_csv_do_not_import_tensorflow(tmp_path):
    out = subprocess.run([sys.executable, "-c", NO_TF, str(tmp_path / "t.csv")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
