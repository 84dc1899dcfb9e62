"""Drawing from a game's sampler and writing what it makes, split by job:

- inputs.py    the sampler's inputs (seeded, one row per class) and images generated from them
- files.py     grids, PNG files, .npz arrays, GIFs and toy points, written atomically
- walks.py     latent walks: interpolation and InfoGAN code traversal
- requests.py  gan-sample's modes: what a config asks for, checked, then made and written
- translations.py  gan-translate: images of one domain read, translated into another, written

Images are float (N, C, H, W) in [-1, 1]. A sampler keeps the generator contract of
gan_cli.models.base.Generator (`sample_inputs`, `forward(**inputs)`).

torchvision and matplotlib are imported where they are used: importing torchvision takes about 1.5 s
here (it loads torch's compiler), which every command would otherwise spend before it can report a
misspelled override.
"""
