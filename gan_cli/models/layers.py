"""Layers that compute a standard operation in a faster way, with the standard parameters."""

import torch
import torch.nn.functional as F
from torch import nn


class ThinConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d for the thin ends of a generator, computed on the CPU as one matrix product
    followed by col2im (F.fold): the same parameters, state dict and result, in less time.

    Why: oneDNN's transposed-convolution kernels are slow for a DCGAN generator's two ends, the
    projection of z from 1x1 to the base map and the last layer down to 1 or 3 image channels. On
    a 28x28 MNIST DCGAN they took about an eighth of an fp32 training step (2 threads) for 4% of its
    FLOPs; as a matmul and a fold they take half to two thirds of that time, and bf16 steps gain
    most. Other devices (cuDNN) use the ordinary kernel.

    Only the arguments a DCGAN uses are supported: groups=1, dilation=1, output_padding=0.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, H, W) -> (B, C_out, H', W')
        if x.device.type != "cpu":
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
            # Each input pixel spreads W^T x over a kh x kw patch: columns (B, C_out * kh * kw, H * W),
            # summed into place by fold.
            columns = self.weight.flatten(1).t() @ x.flatten(2)
            size = ((height - 1) * sh - 2 * ph + kh, (width - 1) * sw - 2 * pw + kw)
            y = F.fold(columns, size, self.kernel_size, stride=self.stride, padding=self.padding)
        return y if self.bias is None else y + self.bias.to(y.dtype).view(1, -1, 1, 1)
