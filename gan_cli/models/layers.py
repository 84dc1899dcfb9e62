"""Layers that compute a standard operation in a faster way, with the standard parameters.

oneDNN's convolution kernels are slow where a DCGAN is thin: the generator's projection of z from
1x1 to the base map, and every kernel that reads or writes an image's 1 or 3 channels. On the CPU
these are computed here as one matrix product and a col2im (F.fold) instead. Other devices (cuDNN)
and compiled graphs use the ordinary kernels. Only the arguments a DCGAN uses are supported:
groups=1, dilation=1, output_padding=0, zero padding.
"""

import torch
import torch.nn.functional as F
from torch import nn


def conv_transpose2d_as_matmul(x, weight, stride, padding, output_size) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, None, stride, padding) of size `output_size` (H', W'), as a matmul
    and a fold: each input pixel spreads W^T x over a kernel-sized patch of the output.

    x (B, C_in, H, W), weight (C_in, C_out, kh, kw) -> (B, C_out, H', W')."""
    columns = weight.flatten(1).t() @ x.flatten(2)  # (B, C_out * kh * kw, H * W)
    return F.fold(columns, output_size, weight.shape[2:], stride=stride, padding=padding)


def _on_eager_cpu(x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


class ThinConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d for a generator's thin ends: the projection of z (1x1 input) and the last
    layer (1 or 3 output channels). Same parameters and state dict as nn.ConvTranspose2d.

    On a 28x28 MNIST DCGAN oneDNN took about an eighth of an fp32 training step (2 threads) on these
    two layers for 4% of its FLOPs; as matmuls and a fold they take half to two thirds of that time,
    and bf16 steps gain most.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        if not _on_eager_cpu(x):
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
        if not (x.requires_grad and torch.is_grad_enabled() and _on_eager_cpu(x)):
            return super().forward(x)
        # Cast as autocast would (conv2d runs in its lower precision), so the function below sees one dtype.
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast("cpu", enabled=False):
            return _ConvWithMatmulInputGradient.apply(x.to(dtype), self.weight.to(dtype), bias, self.stride, self.padding)


class _ConvWithMatmulInputGradient(torch.autograd.Function):
    """F.conv2d(x, weight, bias, stride, padding), whose backward computes the input's gradient (the
    transposed convolution of the output's) by conv_transpose2d_as_matmul. Every op of the backward
    is differentiable, so gradient penalties (double backward) work through it."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding):
        ctx.save_for_backward(x, weight)
        ctx.stride, ctx.padding, ctx.has_bias = stride, padding, bias is not None
        return F.conv2d(x, weight, bias, stride, padding)

    @staticmethod
    def backward(ctx, grad):  # grad (B, C_out, H', W')
        x, weight = ctx.saved_tensors
        needs_x, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        grad_x = grad_weight = grad_bias = None
        if needs_x:
            grad_x = conv_transpose2d_as_matmul(grad, weight, ctx.stride, ctx.padding, x.shape[2:])
        if needs_weight or needs_bias:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, ctx.stride, ctx.padding,
                (1, 1), False, (0, 0), 1, (False, needs_weight, needs_bias),
            )
        return grad_x, grad_weight, grad_bias, None, None
