"""DCGAN shapes follow the data; D returns logits; initialisation is the paper's."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data import ImageShape
from gan_cli.errors import GanError
from gan_cli.models import build_networks
from gan_cli.models.dcgan import resolution_stages

DCGAN = OmegaConf.create({"name": "dcgan", "latent_dim": 16, "g_width": 8, "d_width": 8, "init": "dcgan_normal"})


@pytest.mark.parametrize("size,stages", [(28, (7, 2)), (32, (4, 3)), (64, (4, 4)), (128, (4, 5))])
def test_resolution_stages(size, stages):
    assert resolution_stages(size) == stages


@pytest.mark.parametrize("size", [27, 30, 7, 2])
def test_sizes_a_dcgan_cannot_build_are_refused(size):
    with pytest.raises(GanError, match=f"image size {size}"):
        resolution_stages(size)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(size, channels):
    generator, discriminator = build_networks(DCGAN, ImageShape(channels, size, 10))
    inputs = generator.sample_inputs(5)
    assert inputs["z"].shape == (5, 16)
    images = generator(**inputs)
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    logits = discriminator(images)
    assert logits.shape == (5,)
    assert not isinstance(list(discriminator.modules())[-1], nn.Sigmoid)


def test_paper_rules_hold():
    generator, discriminator = build_networks(DCGAN, ImageShape(1, 28, 10))
    g_layers, d_layers = list(generator.net), list(discriminator.net)
    for net in (generator, discriminator):
        assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for m in net.modules())
    assert isinstance(g_layers[-1], nn.Tanh) and not isinstance(g_layers[-2], nn.BatchNorm2d)
    assert any(isinstance(m, nn.ReLU) for m in g_layers)
    assert isinstance(d_layers[1], nn.LeakyReLU) and d_layers[1].negative_slope == 0.2  # no BN on D's input
    assert any(isinstance(m, nn.BatchNorm2d) for m in d_layers)


def test_dcgan_normal_initialisation():
    torch.manual_seed(0)
    cfg = OmegaConf.merge(DCGAN, {"g_width": 64, "d_width": 64})
    generator, _ = build_networks(cfg, ImageShape(1, 28, 10))
    conv = generator.net[0].weight
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    bn = generator.net[1].weight
    assert abs(bn.mean().item() - 1) < 0.01 and bn.std().item() < 0.04


def test_unknown_architecture_and_init_are_refused():
    with pytest.raises(GanError, match="model.name='resnet'"):
        build_networks(OmegaConf.merge(DCGAN, {"name": "resnet"}), ImageShape(1, 28, 10))
    with pytest.raises(GanError, match="model.init='xavier'"):
        build_networks(OmegaConf.merge(DCGAN, {"init": "xavier"}), ImageShape(1, 28, 10))
