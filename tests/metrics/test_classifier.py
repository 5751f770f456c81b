"""The shipped reference classifier: sha256 check, accuracy, batch-size independence."""
import shutil

import pytest
import torch

from gankit.metrics import classifier as C


@pytest.mark.parametrize("name, min_acc", [("mnist", 0.993), ("fashion-mnist", 0.90)])
def test_shipped_weights_load_and_match_their_sha256(name, min_acc):
    clf = C.load_classifier(name)
    assert clf.sha256 == C.WEIGHTS_SHA256[name]
    assert clf.feature_dim == 128 and not clf.model.training
    assert C.weights_path(name).stat().st_size < 2_000_000
    assert clf.meta["dataset"] == name and clf.meta["test_acc"] >= min_acc
    assert float(clf.model.feature_scale) > 1.0       # fixed at training time, not 1


@pytest.mark.slow
def test_fashion_classifier_accuracy():
    from gankit.data import DataError, load_dataset
    try:
        test = load_dataset("fashion-mnist", "test", limit=2000)
    except DataError as e:
        pytest.skip(f"Fashion-MNIST not available: {e}")
    clf = C.load_classifier("fashion-mnist")
    assert C.accuracy(clf.model, test.images, test.labels) > 0.88


def test_tampered_file_is_refused(tmp_path, monkeypatch):
    shipped = C.weights_path("mnist")
    monkeypatch.setattr(C, "WEIGHTS_DIR", tmp_path)
    copy = C.weights_path("mnist")
    shutil.copy(shipped, copy)
    C.load_classifier("mnist")                    # an exact copy passes
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 1                     # flip one bit of the weights
    copy.write_bytes(bytes(data))
    with pytest.raises(C.WeightsError, match="sha256 .* does not match.*gankit classifier train"):
        C.load_classifier("mnist")


def test_missing_file_says_how_to_rebuild(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(C.WeightsError, match="not found.*gankit classifier train --dataset mnist"):
        C.load_classifier("mnist")


def test_other_file_checked_against_given_sha(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(C.weights_path("mnist"), copy)
    assert C.load_classifier("mnist", path=copy).sha256 == C.WEIGHTS_SHA256["mnist"]
    with pytest.raises(C.WeightsError, match="does not match"):
        C.load_classifier("mnist", path=copy, expected_sha256="0" * 64)


@pytest.mark.slow
def test_accuracy_on_test_images():
    from gankit.data import load_dataset
    test = load_dataset("mnist", "test")
    clf = C.load_classifier("mnist")
    assert C.accuracy(clf.model, test.images[:3000], test.labels[:3000]) > 0.985


def test_features_do_not_depend_on_batch_size():
    from gankit.data import load_dataset
    x = load_dataset("mnist", "val", limit=64).images
    clf = C.load_classifier("mnist").model
    f1, l1 = C.run_classifier(clf, x, batch_size=64)
    f2, l2 = C.run_classifier(clf, x, batch_size=7)
    f3, _ = C.run_classifier(clf, x[:8], batch_size=1)
    torch.testing.assert_close(f2, f1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f3, f1[:8], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(l2, l1, rtol=1e-5, atol=1e-5)


def test_wrong_input_refused():
    clf = C.load_classifier("mnist").model
    with pytest.raises(ValueError, match="uint8"):
        C.run_classifier(clf, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="shape"):
        C.run_classifier(clf, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_no_classifier_for_other_datasets():
    with pytest.raises(C.WeightsError, match="features='inception'"):
        C.classifier_for("cifar10")


@pytest.mark.slow
def test_training_recipe_runs_one_tiny_epoch(tmp_path, monkeypatch):
    # The recipe end to end on the 8x8 `digits` set (upscaled to 28x28): a weights file that
    # loads back, with its accuracy and sha256 reported.
    pytest.importorskip("sklearn")
    recipe = C.Recipe("digits", epochs=1, batch_size=64, widths=(4, 8, 8), feature_dim=16)
    s = C.train_classifier("mnist", out=tmp_path / "d.pt", recipe=recipe, log=lambda m: None)
    assert 0.0 <= s["test_acc"] <= 1.0 and len(s["sha256"]) == 64
    clf = C.load_classifier("mnist", path=tmp_path / "d.pt", expected_sha256=s["sha256"])
    assert clf.feature_dim == 16 and clf.meta["dataset"] == "digits"
