"""The algorithm, pure and importable alone: the networks (`models`: the seed's, `seed_nets`,
and the WGAN authors' DCGAN ones, `dcgan_nets`, from shared `layers`), the losses, the optimizer
and the clip (`optim`), the training state (`state`), what each update draws and the critic
schedule (`draws`), the update steps (`steps`: the WGAN update is `steps._critic_update` and
`steps._generator_step`), DiffAugment (`augment`) and drawing images from a generator
(`generation`). It reads the config schema (wgan_jax.config) and nothing else of the package."""
