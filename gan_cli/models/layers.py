"""Layers that compute a standard operation in a faster way, with the standard parameters.

oneDNN's convolution kernels are slow where a DCGAN is thin: the generator's projection of z from
1x1 to the base map, and every kernel that reads or writes an image's 1 or 3 channels. On the CPU
these are computed here as one matrix product and a col2im (F.fold) instead. In the wide inner
stages, oneDNN's bf16 weight gradient is slow on CPUs without AMX; under bf16 autocast it is one
bf16 matmul over the input patches here. Other devices (cuDNN) and compiled graphs use the ordinary
kernels, and so do arguments a DCGAN does not use (groups, dilation, output padding, padding modes).
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_transpose2d_as_matmul(x, weight, stride, padding, output_size) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, None, stride, padding) of size `output_size` (H', W'), as a matmul
    and a fold: each input pixel spreads W^T x over a kernel-sized patch of the output.

    x (B, C_in, H, W), weight (C_in, C_out, kh, kw) -> (B, C_out, H', W')."""
    columns = weight.flatten(1).t() @ x.flatten(2)  # (B, C_out * kh * kw, H * W)
    return _Fold.apply(columns, tuple(output_size), tuple(weight.shape[2:]), stride, padding)


def patches(x, kernel_size, stride, padding, patch_grid) -> torch.Tensor:
    """The kernel-sized patches of the zero-padded x that a convolution reads, as a strided view:
    x (B, C, H, W) -> (B, H', W', kh, kw, C), where `patch_grid` is (H', W'), the output's size."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    padded = F.pad(x, (pw, pw, ph, ph)).contiguous(memory_format=torch.channels_last)  # (B, C, H + 2ph, W + 2pw)
    batch_stride, channel_stride, row_stride, column_stride = padded.stride()
    return padded.as_strided(
        (len(x), *patch_grid, kh, kw, x.shape[1]),
        (batch_stride, sh * row_stride, sw * column_stride, row_stride, column_stride, channel_stride),
    )


def conv2d_weight_gradient(grad, x, kernel_size, stride, padding) -> torch.Tensor:
    """The gradient of F.conv2d(x, w, None, stride, padding) with respect to w, as one matmul: every
    output pixel's gradient times the input patch under it, summed over pixels and batch.

    grad (B, O, H', W'), x (B, C, H, W) -> (O, C, kh, kw), in channels-last strides. A transposed
    convolution's weight gradient is this with the roles swapped: (grad, x) = (its input, its output's gradient).
    """
    (kh, kw), channels = kernel_size, x.shape[1]
    patch_rows = patches(x, kernel_size, stride, padding, grad.shape[2:]).reshape(-1, kh * kw * channels)  # (B H' W', kh kw C)
    grad_rows = grad.permute(0, 2, 3, 1).reshape(-1, grad.shape[1])  # (B * H' * W', O)
    return (grad_rows.t() @ patch_rows).view(grad.shape[1], kh, kw, channels).permute(0, 3, 1, 2)


class _Fold(torch.autograd.Function):
    """F.fold(columns, output_size, kernel_size, stride=stride, padding=padding), whose backward (the
    unfold of the gradient) copies the patches out of a strided view: about 4x faster than im2col's
    loop for a 28x28 image (0.1 vs 0.4 ms at batch 64). Its backward is differentiable (gradient penalties)."""

    @staticmethod
    def forward(ctx, columns, output_size, kernel_size, stride, padding):  # (B, C kh kw, L) -> (B, C, H, W)
        ctx.kernel_size, ctx.stride, ctx.padding = kernel_size, stride, padding
        return F.fold(columns, output_size, kernel_size, stride=stride, padding=padding)

    @staticmethod
    def backward(ctx, grad):  # grad (B, C, H, W) -> (B, C * kh * kw, L), F.unfold's layout
        (kh, kw), (sh, sw), (ph, pw) = ctx.kernel_size, ctx.stride, ctx.padding
        grid = ((grad.shape[2] + 2 * ph - kh) // sh + 1, (grad.shape[3] + 2 * pw - kw) // sw + 1)
        unfolded = patches(grad, ctx.kernel_size, ctx.stride, ctx.padding, grid).permute(0, 5, 3, 4, 1, 2)
        return unfolded.reshape(len(grad), grad.shape[1] * kh * kw, -1), None, None, None, None


def _takes_matmul_path(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor) -> bool:
    """Whether `layer`(x) may be computed here: on the eager CPU path (cuDNN and compiled graphs take
    PyTorch's kernels), with the arguments the matmul paths compute (the others take PyTorch's too)."""
    return (
        x.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and layer.groups == 1
        and tuple(layer.dilation) == (1, 1)
        and layer.padding_mode == "zeros"
        and not isinstance(layer.padding, str)  # "same" / "valid"
        and tuple(getattr(layer, "output_padding", (0, 0))) == (0, 0)
    )


class ThinConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d for a generator's thin ends: the projection of z (1x1 input) and the last
    layer (1 or 3 output channels). Same parameters and state dict as nn.ConvTranspose2d.

    On a 28x28 MNIST DCGAN oneDNN took about an eighth of an fp32 training step (2 threads) on these
    two layers for 4% of its FLOPs; as matmuls and a fold they take half to two thirds of that time,
    and bf16 steps gain most.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        if not _takes_matmul_path(self, x):
            return super().forward(x)
        batch, _, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if height == width == 1 and ph == pw == 0:
            # A 1x1 input: every output pixel is a plain linear map of x, so col2im is a reshape.
            # Weight (C_in, C_out, kh, kw) read as (C_in, kh * kw * C_out): the output comes out channels-last.
            weight = self.weight.permute(0, 2, 3, 1).flatten(1)
            y = (x.flatten(1) @ weight).view(batch, kh, kw, self.out_channels).permute(0, 3, 1, 2)
            if not self.weight.is_contiguous(memory_format=torch.channels_last):
                y = y.contiguous()  # the model is kept in NCHW (train.channels_last=false)
        else:
            size = ((height - 1) * sh - 2 * ph + kh, (width - 1) * sw - 2 * pw + kw)
            y = conv_transpose2d_as_matmul(x, self.weight, self.stride, self.padding, size)
        return y if self.bias is None else y + self.bias.to(y.dtype).view(1, -1, 1, 1)


class ThinInputConv2d(nn.Conv2d):
    """nn.Conv2d for a discriminator's input layer (an image's 1 or 3 channels, plus label maps), whose
    gradient with respect to its input is a matmul and a fold. Same parameters and state dict as
    nn.Conv2d.

    G's update differentiates D's judgement back into the fake images. oneDNN's backward-data kernel
    for so few input channels took about 2 ms of a 60 ms fp32 step of the 28x28 MNIST DCGAN (2
    threads), for 0.3% of its FLOPs; as a matmul and a fold it takes a third of that. The forward
    pass and the weight gradient stay oneDNN's (fast here), and inputs without gradients (D's own
    update) take the ordinary path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        if not (x.requires_grad and torch.is_grad_enabled() and _takes_matmul_path(self, x)):
            return super().forward(x)
        return _convolve_with_matmul(self, x, "input")


class WholeMapConv2d(nn.Conv2d):
    """nn.Conv2d whose kernel covers its whole input map without padding (a DCGAN discriminator's head:
    the last b x b feature map to one logit), computed as the linear map it is. Same parameters and
    state dict as nn.Conv2d.

    D judges three batches per step of the 28x28 MNIST DCGAN (batch 64, 2 threads); the forward and
    backward passes of this 0.8 MFLOP layer took 1.5 ms of the step with oneDNN, 0.7 ms as a matmul.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, b, b) -> (B, C_out, 1, 1)
        whole_map = x.shape[2:] == self.weight.shape[2:] and tuple(self.padding) == (0, 0)
        if not (whole_map and _takes_matmul_path(self, x)):
            return super().forward(x)
        if x.is_contiguous():  # NCHW: flatten as (C, h, w)
            features, weight = x.flatten(1), self.weight.flatten(1)
        else:  # channels-last: flatten both as (h, w, C), a view of x
            features, weight = x.permute(0, 2, 3, 1).flatten(1), self.weight.permute(0, 2, 3, 1).flatten(1)
        return F.linear(features, weight, self.bias)[:, :, None, None]


class _Bf16WeightGradientByMatmul:
    """Mixin for nn.Conv2d and nn.ConvTranspose2d: under bf16 autocast on the eager CPU path, the weight
    gradient is conv2d_weight_gradient's bf16 matmul instead of oneDNN's kernel.

    On the 2-core Zen 4 (AVX-512 BF16, no AMX) this was measured for, oneDNN's bf16 weight gradient of
    the 28x28 MNIST DCGAN's inner convolutions ran at about 210 GFLOP/s, barely above its fp32 one
    (175), while a bf16 matmul of the same size reaches about 270: the patches and the matmul take
    0.88x its time. In fp32 the matmul is slower than oneDNN, so fp32 takes the ordinary path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        if not (bf16 and self.weight.requires_grad and torch.is_grad_enabled() and _takes_matmul_path(self, x)):
            return super().forward(x)
        return _convolve_with_matmul(self, x, "weight")


class InnerConv2d(_Bf16WeightGradientByMatmul, nn.Conv2d):
    """nn.Conv2d for a discriminator's inner stages (same parameters and state dict); see the mixin."""


class InnerConvTranspose2d(_Bf16WeightGradientByMatmul, nn.ConvTranspose2d):
    """nn.ConvTranspose2d for a generator's inner stages (same parameters and state dict); see the mixin."""


def _convolve_with_matmul(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, part: str) -> torch.Tensor:
    """`layer`(x), with the gradient `part` ("input" or "weight") computed as a matmul. Casts as
    autocast would (convolutions run in its lower precision), so the function below sees one dtype."""
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    bias = None if layer.bias is None else layer.bias.to(dtype)
    transposed = isinstance(layer, nn.ConvTranspose2d)
    with torch.autocast("cpu", enabled=False):
        return _ConvolutionWithMatmulGradient.apply(
            x.to(dtype), layer.weight.to(dtype), bias, layer.stride, layer.padding, transposed, part
        )


class _ConvolutionWithMatmulGradient(torch.autograd.Function):
    """F.conv2d(x, weight, bias, stride, padding) (F.conv_transpose2d when `transposed`), whose backward
    computes one gradient as a matmul: `part` "input" (a convolution's input gradient, the transposed
    convolution of the output's, by conv_transpose2d_as_matmul) or "weight" (conv2d_weight_gradient).
    The other gradients are PyTorch's. Every op of the backward is differentiable, so gradient
    penalties (double backward) work through it."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed, part):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.transposed, ctx.part, ctx.has_bias = stride, padding, transposed, part, bias is not None
        return (F.conv_transpose2d if transposed else F.conv2d)(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):  # grad (B, C_out, H', W')
        x, weight = ctx.saved_tensors
        needs = list(ctx.needs_input_grad[:3])  # input, weight, bias
        grads = [None, None, None]
        if ctx.part == "input" and needs[0]:
            assert not ctx.transposed, "only a convolution's input gradient is a conv_transpose2d_as_matmul"
            grads[0], needs[0] = conv_transpose2d_as_matmul(grad, weight, ctx.stride, ctx.padding, x.shape[2:]), False
        if ctx.part == "weight" and needs[1]:
            kernel = weight.shape[2:]
            grads[1] = (
                conv2d_weight_gradient(x, grad, kernel, ctx.stride, ctx.padding)
                if ctx.transposed
                else conv2d_weight_gradient(grad, x, kernel, ctx.stride, ctx.padding)
            )
            needs[1] = False
        if any(needs):
            bias_sizes = [weight.shape[1 if ctx.transposed else 0]] if ctx.has_bias else None
            standard = torch.ops.aten.convolution_backward(
                grad, x, weight, bias_sizes, ctx.stride, ctx.padding, (1, 1), ctx.transposed, (0, 0), 1, needs
            )
            grads = [mine if mine is not None else theirs for mine, theirs in zip(grads, standard)]
        return (*grads, None, None, None, None)
