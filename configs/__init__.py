# The YAML configs of gan-train and gan-sample, installed as the package gan_cli.configs.
