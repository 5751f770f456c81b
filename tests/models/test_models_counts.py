"""Parameter counts of the preset models, against the reports where they state them."""
import pytest
import torch

from gankit.config import preset_names, resolve
from gankit.models import build_models, count_parameters, describe

MNIST = (1, 28, 28)


def counts(preset):
    G, D = build_models(resolve(preset).model, MNIST, 10)
    return count_parameters(G), count_parameters(D)


# Every preset: (our G, our D) parameter counts and what its report states, (G, D) or None
# when the report states no count (then ours follows from the layers the report lists, or
# from the open values the preset's notes choose). A new preset must be added here.
COUNTS = {
    # report 000 lists its layers, not counts:
    # G 138*128+128 + 128*256+256 + 256*784+784; D 794*256+256 + 256*128+128 + 129 + 10*10
    "mlp-cgan-m1": ((252_304, 236_645), None),
    "mlp-cgan-m2": ((252_304, 236_645), None),
    "mlp-cgan-m3": ((252_304, 236_645), None),
    "mlp-cgan-m4": ((252_304, 236_645), None),
    # report 001: widths open (ngf = ndf = 32 chosen)
    "dcgan-r001": ((347_073, 36_577), None),
    "cdcgan-r001": ((378_433, 41_697), None),
    # report 002, Table 1: "CGAN ref" and "OurCGAN"
    "cgan-ref-r002": ((228_841, 249_229), (229_887, 249_983)),
    "resnet-cgan-r002": ((306_693, 618_041), (285_375, 618_751)),
    # report 003: hidden sizes open (256/512/1024 chosen)
    "mlp-gan-r003": ((1_486_352, 1_460_225), None),
    # report 004 lists its layers exactly:
    # G 64*256*9+256 + 512 + 256*128*16+128 + 256 + 128*64*9+64 + 128 + 64*16+1
    # D 160 + 32 + 16*32*25+32 + 64 + 32*64*25+64 + 128 + 65
    "dcgan-r004": ((747_841, 64_545), None),
    # gankit's own (ngf and ndf 64 since 2026-12-03): the DCGAN's D without BN (-256, +128
    # conv bias), with the projection embedding (10*128) and the classifier head (128*10+10)
    "default": ((596_609, 151_371), None),
    # report 001's other datasets: no counts stated (3x32x32 for CIFAR-10)
    "dcgan-cifar10-r001": ((370_627, 167_841), None),
    "dcgan-cifar10-deep-r001": ((41_619_331, 663_361), None),
    "dcgan-sheep-r001": ((347_073, 36_577), None),
}
SHAPES = {"dcgan-cifar10-r001": (3, 32, 32), "dcgan-cifar10-deep-r001": (3, 32, 32)}
# How far from the report's counts each preset is allowed to be, and why (its notes say it).
TOLERANCE = {
    # the reference cGAN's layers are not described: the closest conditional DCGAN widths
    "cgan-ref-r002": (0.01, 0.01),
    # the report's layer figures are lost; no reading of its text gives G 285,375 exactly
    "resnet-cgan-r002": (0.08, 0.002),
}


def test_every_preset_has_its_counts_listed():
    assert sorted(COUNTS) == sorted(preset_names())


@pytest.mark.parametrize("preset", sorted(COUNTS))
def test_parameter_counts_against_the_report(preset):
    cfg = resolve(preset).model
    with torch.device("meta"):  # counts need no memory (the deep CIFAR G has 41M weights)
        G, D = build_models(cfg, SHAPES.get(preset, MNIST), 10 if cfg.conditional else 0)
    ours, reported = COUNTS[preset]
    assert (count_parameters(G), count_parameters(D)) == ours
    if reported is not None:
        rel_g, rel_d = TOLERANCE.get(preset, (0.0, 0.0))
        assert ours[0] == pytest.approx(reported[0], rel=rel_g, abs=0)
        assert ours[1] == pytest.approx(reported[1], rel=rel_d, abs=0)
        notes = resolve(preset).notes  # the preset says both numbers, the report's and ours
        assert all(f"{n:,}" in notes for n in (*ours, *reported))


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
