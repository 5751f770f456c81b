"""Parameter counts of the preset models, against the reports where they state them."""
import pytest

from gankit.config import resolve
from gankit.models import build_models, count_parameters, describe

MNIST = (1, 28, 28)


def counts(preset):
    G, D = build_models(resolve(preset).model, MNIST, 10)
    return count_parameters(G), count_parameters(D)


def test_r000_mlp_is_report_000_exactly():
    # G: 138*128+128 + 128*256+256 + 256*784+784; D: 794*256+256 + 256*128+128 + 129 + 10*10.
    assert counts("mlp-cgan-m1") == (252_304, 236_645)


def test_r004_dcgan_is_report_004_exactly():
    # G: 64*256*9+256 + 512 + 256*128*16+128 + 256 + 128*64*9+64 + 128 + 64*16+1
    # D: 160 + 32 + 16*32*25+32 + 64 + 32*64*25+64 + 128 + 65
    assert counts("dcgan-r004") == (747_841, 64_545)


def test_r002_resnet_is_in_the_ballpark_of_report_002():
    """Report 002: G 285,375 and D 618,751 (its layer figures are lost). gankit's layout
    gives G 306,693 (+7.5%) and D 618,041 (-0.1%)."""
    g, d = counts("resnet-cgan-r002")
    assert (g, d) == (306_693, 618_041)
    assert g == pytest.approx(285_375, rel=0.10)
    assert d == pytest.approx(618_751, rel=0.01)


def test_describe_one_liner():
    G, D = build_models(resolve("mlp-cgan-m1").model, MNIST, 10)
    assert describe(G, D) == "G 252,304 params, D 236,645 params"


def test_spectral_norm_adds_no_parameters():
    cfg = resolve("resnet-cgan-r002").model
    cfg.ngf = cfg.ndf = 8
    _, with_sn = build_models(cfg, MNIST, 10)
    cfg.spectral_norm = False
    _, without = build_models(cfg, MNIST, 10)
    assert count_parameters(with_sn) == count_parameters(without)
