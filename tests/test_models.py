"""Networks follow the data's shape; D returns logits (and Q's code predictions for InfoGAN);
conditioning, normalisation, spectral norm and initialisation do what their papers say."""

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from gan_cli.data import DataShape
from gan_cli.errors import GanError
from gan_cli.models import build_generator, build_networks
from gan_cli.models.dcgan import resolution_stages
from gan_cli.models.layers import (
    InnerConv2d,
    InnerConvTranspose2d,
    ThinConvTranspose2d,
    ThinInputConv2d,
    WholeMapConv2d,
    _ConvolutionWithMatmulGradient,
)
from tests.helpers import compose_train, tiny_model

MNIST_SHAPE = DataShape((1, 28, 28), 10)


def model_config(option: str, *overrides: str):
    return compose_train([*tiny_model(option), *overrides]).model


@pytest.mark.parametrize("size,stages", [(28, (7, 2)), (32, (4, 3)), (64, (4, 4)), (128, (4, 5))])
def test_resolution_stages(size, stages):
    assert resolution_stages(size) == stages


@pytest.mark.parametrize("size", [27, 30, 7, 2])
def test_sizes_a_dcgan_cannot_build_are_refused(size):
    with pytest.raises(GanError, match=f"image size {size}"):
        resolution_stages(size)


@pytest.mark.parametrize("option", ["dcgan", "mlp"])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(option, size, channels):
    generator, discriminator = build_networks(model_config(option), DataShape((channels, size, size), 10))
    inputs = generator.sample_inputs(5)
    assert set(inputs) == {"z"} and inputs["z"].shape == (5, generator.latent_dim)
    images = generator(**inputs)
    assert images.shape == (5, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    out = discriminator(images)
    assert out.logits.shape == (5,) and out.codes is None
    assert not any(isinstance(m, nn.Sigmoid) for m in discriminator.modules())


@pytest.mark.parametrize("option", ["cgan", "cgan_mlp"])
def test_conditional_models_take_labels(option):
    generator, discriminator = build_networks(model_config(option), MNIST_SHAPE)
    labels = torch.tensor([0, 3, 9])
    inputs = generator.sample_inputs(3, labels=labels)
    assert torch.equal(inputs["y"], labels)
    images = generator(**inputs)
    assert images.shape == (3, 1, 28, 28)
    assert discriminator(images, labels).logits.shape == (3,)
    assert generator.sample_inputs(100)["y"].unique().numel() > 5  # labels drawn uniformly otherwise
    # the label changes the image: same z, other label
    other = generator(inputs["z"], torch.tensor([1, 4, 0]))
    assert not torch.allclose(images, other)


def test_infogan_codes_and_q_head():
    generator, discriminator = build_networks(model_config("infogan"), MNIST_SHAPE)
    inputs = generator.sample_inputs(6)
    c = inputs["c"]
    assert c.shape == (6, 12)  # one-hot of 10 values + 2 continuous codes
    assert torch.equal(c[:, :10].sum(dim=1), torch.ones(6))
    assert c[:, 10:].abs().max() <= 1
    out = discriminator(generator(**inputs))
    assert out.logits.shape == (6,) and out.codes.shape == (6, 10 + 2 * 2)


def test_paper_rules_hold():
    generator, discriminator = build_networks(model_config("dcgan"), MNIST_SHAPE)
    g_layers, d_layers = list(generator.net), list(discriminator.body)
    for net in (generator, discriminator):
        assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for m in net.modules())
    assert isinstance(g_layers[-1], nn.Tanh) and not isinstance(g_layers[-2], nn.BatchNorm2d)
    assert any(isinstance(m, nn.ReLU) for m in g_layers)
    assert isinstance(d_layers[1], nn.LeakyReLU) and d_layers[1].negative_slope == 0.2  # no BN on D's input
    assert any(isinstance(m, nn.BatchNorm2d) for m in d_layers)


def test_maxout_discriminator_of_the_original_gan():
    _, discriminator = build_networks(compose_train(["model=mlp"]).model, MNIST_SHAPE)
    maxouts = [m for m in discriminator.modules() if type(m).__name__ == "Maxout"]
    assert [(m.units, m.pieces) for m in maxouts] == [(240, 5), (240, 5)]
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in discriminator.modules())


@pytest.mark.parametrize("norm,penalty,expected", [
    ("auto", False, nn.BatchNorm2d), ("auto", True, nn.GroupNorm), ("layer", False, nn.GroupNorm), ("none", True, None),
])
def test_discriminator_normalisation(norm, penalty, expected):
    _, discriminator = build_networks(model_config("dcgan", f"model.d_norm={norm}"), MNIST_SHAPE, penalty)
    norms = [m for m in discriminator.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))]
    assert all(isinstance(m, expected) for m in norms) and (bool(norms) == (expected is not None))


def test_spectral_norm_bounds_every_weight_layer():
    _, discriminator = build_networks(model_config("dcgan", "model.spectral_norm=true", "model.d_norm=none"), MNIST_SHAPE)
    discriminator.train()
    for _ in range(30):  # power iterations run with each forward pass in training mode
        discriminator(torch.randn(4, 1, 28, 28))
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_dcgan_normal_initialisation():
    torch.manual_seed(0)
    generator = build_generator(compose_train().model, MNIST_SHAPE)
    conv = generator.net[0].weight
    assert abs(conv.std().item() - 0.02) < 0.002 and abs(conv.mean().item()) < 0.002
    bn = generator.net[1].weight
    assert abs(bn.mean().item() - 1) < 0.01 and bn.std().item() < 0.04


@pytest.mark.parametrize("scheme", ["xavier", "orthogonal"])
def test_other_initialisations(scheme):
    generator = build_generator(compose_train([f"model.init={scheme}"]).model, MNIST_SHAPE)
    weight = generator.net[0].weight.detach()  # (100, 128, 7, 7)
    if scheme == "xavier":  # uniform with variance 2 / (fan_in + fan_out)
        fans = (128 + 100) * 49
        assert weight.std().item() == pytest.approx((2 / fans) ** 0.5, rel=0.02)
    else:
        rows = weight.flatten(1)  # (100, 128*49): orthonormal rows
        assert torch.allclose(rows @ rows.T, torch.eye(100), atol=1e-4)


def test_unknown_architecture_and_init_are_refused():
    cfg = compose_train().model
    with pytest.raises(GanError, match="model.arch='resnet'"):
        build_networks(OmegaConf.merge(cfg, {"arch": "resnet"}), MNIST_SHAPE)
    with pytest.raises(GanError, match="model.init='uniform'"):
        build_networks(OmegaConf.merge(cfg, {"init": "uniform"}), MNIST_SHAPE)


def test_conditional_model_on_unlabelled_data_is_refused():
    with pytest.raises(GanError, match="labelled dataset"):
        build_networks(model_config("cgan"), DataShape((1, 28, 28), 0))


@pytest.mark.parametrize(
    "layer,input_shape",
    [((100, 128, 7, 1, 0), (5, 100, 1, 1)), ((64, 1, 4, 2, 1), (5, 64, 14, 14)), ((16, 3, 4, 2, 1), (5, 16, 8, 8))],
    ids=["projection from 1x1", "last layer to 1 channel", "last layer to 3 channels"],
)
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_thin_transposed_convolution_equals_the_standard_one(layer, input_shape, channels_last):
    """ThinConvTranspose2d (matmul + col2im) has nn.ConvTranspose2d's parameters and gives its
    outputs and gradients, in the model's memory layout."""
    standard, thin = nn.ConvTranspose2d(*layer), ThinConvTranspose2d(*layer)
    thin.load_state_dict(standard.state_dict())  # the same keys and shapes: checkpoints are interchangeable
    x = torch.randn(input_shape)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    standard, thin, x = standard.to(memory_format=layout), thin.to(memory_format=layout), x.to(memory_format=layout)
    x_standard, x_thin = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_standard, y_thin = standard(x_standard), thin(x_thin)
    assert y_thin.shape == y_standard.shape
    torch.testing.assert_close(y_thin, y_standard, rtol=1e-4, atol=1e-5)
    upstream = torch.randn_like(y_standard)
    y_standard.backward(upstream)
    y_thin.backward(upstream)
    torch.testing.assert_close(x_thin.grad, x_standard.grad, rtol=1e-4, atol=1e-5)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(thin, name).grad, getattr(standard, name).grad, rtol=1e-4, atol=1e-4)
    if layer[1] > 4:  # a map with many channels stays in the model's layout for the next layer
        assert y_thin.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (11, 28), (1, 29)], ids=["MNIST", "RGB", "labelled MNIST", "odd size"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_thin_input_convolution_equals_the_standard_one(channels, size, channels_last):
    """ThinInputConv2d (input gradient as matmul + col2im) has nn.Conv2d's parameters and gives its
    outputs and gradients, with and without a gradient for the input."""
    standard, thin = nn.Conv2d(channels, 16, 4, 2, 1), ThinInputConv2d(channels, 16, 4, 2, 1)
    thin.load_state_dict(standard.state_dict())
    layout = torch.channels_last if channels_last else torch.contiguous_format
    standard, thin = standard.to(memory_format=layout), thin.to(memory_format=layout)
    x = torch.randn(5, channels, size, size).to(memory_format=layout)
    for input_gradient in (True, False):
        x_standard, x_thin = x.clone().requires_grad_(input_gradient), x.clone().requires_grad_(input_gradient)
        y_standard, y_thin = standard(x_standard), thin(x_thin)
        torch.testing.assert_close(y_thin, y_standard, rtol=1e-5, atol=1e-6)
        assert y_thin.is_contiguous(memory_format=layout)
        upstream = torch.randn_like(y_standard)
        standard.zero_grad(), thin.zero_grad()
        y_standard.backward(upstream)
        y_thin.backward(upstream)
        if input_gradient:
            torch.testing.assert_close(x_thin.grad, x_standard.grad, rtol=1e-4, atol=1e-5)
        for name in ("weight", "bias"):
            torch.testing.assert_close(getattr(thin, name).grad, getattr(standard, name).grad, rtol=1e-4, atol=1e-4)


def test_thin_input_convolution_supports_gradient_penalties_and_bf16():
    standard, thin = nn.Conv2d(1, 8, 4, 2, 1).double(), ThinInputConv2d(1, 8, 4, 2, 1).double()
    thin.load_state_dict(standard.state_dict())
    x = torch.randn(3, 1, 12, 12, dtype=torch.double, requires_grad=True)
    torch.autograd.gradgradcheck(thin, (x,))  # the double backward of a gradient penalty

    def penalty_gradients(layer):  # WGAN-GP's penalty: D's input gradient norm, differentiated in D's weights
        inputs = x.detach().clone().requires_grad_()
        (input_gradient,) = torch.autograd.grad(torch.tanh(layer(inputs)).sum(), inputs, create_graph=True)
        return torch.autograd.grad((input_gradient.norm() - 1) ** 2, (layer.weight, layer.bias))

    for thin_gradient, standard_gradient in zip(penalty_gradients(thin), penalty_gradients(standard)):
        torch.testing.assert_close(thin_gradient, standard_gradient)
    thin = thin.float()
    images = torch.randn(4, 1, 28, 28, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = thin(images)
    assert y.dtype == torch.bfloat16  # as nn.Conv2d under autocast
    y.float().sum().backward()
    assert images.grad.dtype == thin.weight.grad.dtype == torch.float32
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


@pytest.mark.parametrize("layers,input_shape", [((nn.Conv2d, InnerConv2d), (5, 16, 14, 14)), ((nn.ConvTranspose2d, InnerConvTranspose2d), (5, 16, 7, 7))], ids=["conv", "transposed"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_inner_convolutions_compute_bf16_weight_gradients_as_matmuls(layers, input_shape, bias, channels_last):
    """InnerConv2d / InnerConvTranspose2d have the standard layers' parameters; under bf16 autocast
    they take the matmul weight gradient and give the standard outputs and gradients, in fp32 the
    standard path itself."""
    standard, inner = (layer(16, 8, 4, 2, 1, bias=bias) for layer in layers)
    inner.load_state_dict(standard.state_dict())
    layout = torch.channels_last if channels_last else torch.contiguous_format
    standard, inner = standard.to(memory_format=layout), inner.to(memory_format=layout)
    x = torch.randn(input_shape).to(memory_format=layout)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_standard, x_inner = x.clone().requires_grad_(), x.clone().requires_grad_()
        y_standard, y_inner = standard(x_standard), inner(x_inner)
    assert type(y_inner.grad_fn).__name__ == "_ConvolutionWithMatmulGradientBackward"
    assert y_inner.dtype == torch.bfloat16
    torch.testing.assert_close(y_inner, y_standard)
    upstream = torch.randn(y_standard.shape)
    y_standard.float().backward(upstream)
    y_inner.float().backward(upstream)
    torch.testing.assert_close(x_inner.grad, x_standard.grad)
    for name in ("weight", "bias") if bias else ("weight",):
        gradient, expected = getattr(inner, name).grad, getattr(standard, name).grad
        assert gradient.dtype == torch.float32
        torch.testing.assert_close(gradient, expected, rtol=2e-2, atol=2e-2 * expected.abs().max().item())
    assert type(inner(x.requires_grad_()).grad_fn).__name__ == type(standard(x).grad_fn).__name__  # fp32: PyTorch's


@pytest.mark.parametrize("transposed,part", [(False, "weight"), (True, "weight"), (False, "input")])
def test_matmul_gradients_are_exact_and_twice_differentiable(transposed, part):
    """The gradients computed as matmuls (conv2d_weight_gradient, conv_transpose2d_as_matmul) match
    finite differences, and so do their own gradients (a gradient penalty's double backward)."""
    # Small: gradgradcheck's cost grows with inputs x outputs (3 in, 2 out channels; 3x3 <-> 6x6 maps).
    x = torch.randn((2, 3, 3, 3) if transposed else (2, 3, 6, 6), dtype=torch.double, requires_grad=True)
    weight = torch.randn(3, 2, 4, 4, dtype=torch.double, requires_grad=True)  # (C_in, C_out) or (C_out, C_in): 3 in
    if not transposed:
        weight = weight.detach().transpose(0, 1).contiguous().requires_grad_()
    bias = torch.randn(2, dtype=torch.double, requires_grad=True)

    def layer(x, weight, bias):
        return _ConvolutionWithMatmulGradient.apply(x, weight, bias, (2, 2), (1, 1), transposed, part)

    torch.autograd.gradcheck(layer, (x, weight, bias))
    torch.autograd.gradgradcheck(layer, (x, weight, bias))


def test_thin_last_layer_is_twice_differentiable():
    layer = ThinConvTranspose2d(6, 1, 4, 2, 1).double()
    torch.autograd.gradgradcheck(layer, (torch.randn(2, 6, 5, 5, dtype=torch.double, requires_grad=True),))


@pytest.mark.parametrize("channels,size", [(128, 7), (64, 4)])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_whole_map_convolution_equals_the_standard_one(channels, size, channels_last):
    """WholeMapConv2d (D's head as a linear map) has nn.Conv2d's parameters, outputs and gradients."""
    standard, head = nn.Conv2d(channels, 1, size), WholeMapConv2d(channels, 1, size)
    head.load_state_dict(standard.state_dict())
    layout = torch.channels_last if channels_last else torch.contiguous_format
    standard, head = standard.to(memory_format=layout), head.to(memory_format=layout)
    x = torch.randn(5, channels, size, size).to(memory_format=layout)
    x_standard, x_head = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_standard, y_head = standard(x_standard), head(x_head)
    assert y_head.shape == y_standard.shape == (5, 1, 1, 1)
    torch.testing.assert_close(y_head, y_standard)
    y_standard.sum().backward()
    (y_head.sum()).backward()
    torch.testing.assert_close(x_head.grad, x_standard.grad)
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(head, name).grad, getattr(standard, name).grad)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head(x).dtype == standard(x).dtype == torch.bfloat16


def test_arguments_the_matmul_paths_do_not_compute_take_pytorchs_kernels():
    x = torch.randn(2, 8, 9, 9, requires_grad=True)
    for layer, standard in (
        (InnerConv2d(8, 4, 3, 2, 1, dilation=2), nn.Conv2d(8, 4, 3, 2, 1, dilation=2)),
        (ThinInputConv2d(8, 4, 4, 2, 1, groups=2), nn.Conv2d(8, 4, 4, 2, 1, groups=2)),
        (ThinConvTranspose2d(8, 1, 4, 2, 1, output_padding=1), nn.ConvTranspose2d(8, 1, 4, 2, 1, output_padding=1)),
        (WholeMapConv2d(8, 1, 9, padding=1), nn.Conv2d(8, 1, 9, padding=1)),
    ):
        layer.load_state_dict(standard.state_dict())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y, expected = layer(x), standard(x)
        assert type(y.grad_fn) is type(expected.grad_fn) and y.shape == expected.shape
        torch.testing.assert_close(y, expected)
